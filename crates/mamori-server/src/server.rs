//! Startup and shutdown: data directory, server key, store, first-start root account, listener,
//! graceful shutdown on SIGTERM or Ctrl-C.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::response::IntoResponse;
use axum::Router;
use rand::rngs::OsRng;
use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Limits};
use crate::domain::{Policy, Service};
use crate::error::{Error, Result};
use crate::keys::ServerKey;
use crate::web::AppState;

/// Opens the store and the server key of a configuration and builds the service.
pub async fn open_service(config: &Config, public_url: String) -> Result<Service> {
    let dir = config.data_dir();
    let (key, created) = ServerKey::load_or_create(&dir, &mut OsRng)?;
    if created {
        tracing::info!(path = %ServerKey::path_in(&dir).display(), "created the server key file: back it up, OTP secrets cannot be decrypted without it");
    }
    let store = crate::store::open(&config.database_url()).await?;
    Service::new(
        store,
        key,
        Policy::from_config(config, public_url),
        &mut OsRng,
    )
    .await
    .and_then(|s| {
        Ok(
            s.with_notifier(crate::delivery::notifier_from_config(&config.smtp)?)
                .with_phone_gateway(crate::delivery::phone_gateway_from_config(&config.phone)?)
                // #15 delivery: a send gives up before the request times out.
                .with_delivery_bound(Duration::from_secs(
                    config.limits.request_timeout_secs.saturating_sub(2).max(1),
                )),
        )
    })
}

fn metrics_recorder() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    let builder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ])
        .ok()?;
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    // Only the first server in a process installs the global recorder (tests may start more).
    metrics::set_global_recorder(recorder).ok()?;
    Some(handle)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

/// Runs the server until SIGTERM/Ctrl-C. Prints on standard output (on first start) the root
/// setup link, then the public URL, the origin security keys are bound to (with a warning when
/// browsers cannot register keys there), what email and phone delivery do, the certificate
/// served with `[tls]`, and `listening on http://ADDR` (`https://` with TLS); records the public URL
/// in the data directory for the admin command line.
pub async fn serve(config: Config) -> Result<()> {
    // Before the first hash (the service's dummy hash is made while opening it).
    if !crate::domain::password::set_concurrency(config.limits.password_hash_concurrency) {
        tracing::warn!("the password hashing bound was already set in this process");
    }
    // #22: bad certificate files refuse start-up before anything else happens, with one line
    // naming the file.
    let challenges = Arc::new(crate::http::acme::Challenges::default());
    let acme = crate::http::acme::AcmeSettings::from_config(&config);
    let certs = match (config.tls.files(), &acme) {
        (Some((cert, key)), _) => Some(Arc::new(
            crate::http::tls::Certificates::open(cert, key)
                .map_err(|e| Error::Config(e.to_string()))?,
        )),
        // #22 ACME: the stored certificate, if any, is served at once; a new one is ordered
        // once the listener answers the CA's challenges.
        (None, Some(_)) => Some(Arc::new(crate::http::tls::Certificates::for_acme(
            challenges.clone(),
        ))),
        (None, None) => None,
    };
    let acceptor = match &certs {
        Some(c) => Some(c.acceptor().map_err(|e| Error::Config(e.to_string()))?),
        None => None,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on {}: {e}", config.listen)))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::Internal(e.to_string()))?;
    let public_url = config.public_url_for(bound);
    // #22: bound before anything is served, so a taken port 80 refuses start-up.
    let redirect = match config.tls.redirect_listen {
        Some(addr) => {
            let l = TcpListener::bind(addr).await.map_err(|e| {
                Error::Config(format!("tls.redirect_listen: cannot listen on {addr}: {e}"))
            })?;
            let at = l.local_addr().map_err(|e| Error::Internal(e.to_string()))?;
            Some((l, at))
        }
        None => None,
    };
    let mut svc = open_service(&config, public_url.clone()).await?;
    if let Some(c) = &certs {
        svc = svc.with_served_certificate(c.expiry());
    }
    let svc = Arc::new(svc);
    // With PostgreSQL the ACME state is the database's, shared by every node.
    let acme = acme.map(|a| a.with_service(&svc));
    if let (Some(a), Some(c)) = (&acme, &certs) {
        crate::http::acme::start(a, c).await;
    }
    // The admin command line makes its links from this file, so they name the port this
    // server really listens on (`--listen 127.0.0.1:0` included), not the configured one.
    let url_file = config.server_url_file();
    if let Err(e) = crate::config::write_server_url(&url_file, &public_url) {
        tracing::warn!(path = %url_file.display(), error = %e, "cannot record the public URL: admin links use the configured address");
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut out = std::io::stdout();
    if let Some(link) = svc.ensure_root(clock.now(), &mut OsRng).await? {
        let _ = writeln!(
            out,
            "root account created; choose its password at this one-time link (valid 1 hour):\nsetup link: {}",
            link.as_str()
        );
        // #15 contacts: root is created without contacts, and without them it cannot recover
        // with alternative factors when its MFA device is lost.
        let _ = writeln!(out, "{}", set_contacts_hint(&config));
    }
    let (keys, warning) =
        crate::domain::webauthn::key_origin_notice(&public_url, &config.service_name);
    let _ = writeln!(out, "public URL: {public_url}");
    let _ = writeln!(out, "{keys}");
    if let Some(w) = warning {
        let _ = writeln!(out, "WARNING: {w}");
        tracing::warn!("{w}");
    }
    // #15 delivery: before `listening on`, the line that scripts (and the tests) wait for, so
    // whoever starts the server has read what delivery does by the time it serves.
    for line in crate::domain::delivery::startup_lines(&config) {
        let _ = writeln!(out, "{line}");
    }
    let scheme = match &certs {
        Some(c) => {
            if c.info().is_none() {
                if let Some(a) = &acme {
                    let line = format!(
                        "tls: acme: no certificate for {} yet; ordering one from {}",
                        a.domain, a.directory
                    );
                    let _ = writeln!(out, "{line}");
                    tracing::info!("{line}");
                }
            }
            if let Some(info) = c.info() {
                let line = info.describe();
                let _ = writeln!(out, "tls: {line}");
                tracing::info!(serial = %info.serial, "tls: {line}");
                if info.not_after.unix_timestamp() <= clock.now() {
                    let w = "the TLS certificate has expired: clients will refuse it";
                    let _ = writeln!(out, "WARNING: {w}");
                    tracing::warn!("{w}");
                }
            }
            "https"
        }
        None => "http",
    };
    if let Some((_, at)) = &redirect {
        let _ = writeln!(out, "redirecting http://{at} to {public_url}");
    }
    // #19: the RADIUS server, when configured, before `listening on` (its line tells where).
    let radius = match crate::radius::bind(&config.radius, svc.clone(), clock.clone()).await? {
        Some(r) => {
            let addr = r.local_addr()?;
            let _ = writeln!(out, "radius: listening on udp://{addr}");
            tracing::info!(%addr, "radius: listening");
            Some(tokio::spawn(r.run()))
        }
        None => None,
    };
    let _ = writeln!(out, "listening on {scheme}://{bound}");
    let _ = out.flush();
    tracing::info!(%bound, backend = svc.backend_name(), "listening");

    let state = AppState::new(
        svc.clone(),
        clock.clone(),
        &config.limits,
        metrics_recorder(),
    );
    // The recorder exists from here on: the gauge set before it was not recorded.
    if let Some(c) = &certs {
        c.publish();
    }
    let limiter = state.sign_in_limiter.clone();
    let validate_limiter = state.validate_limiter.clone();
    let oidc_client_limiter = state.oidc_client_limiter.clone();
    let housekeeping = tokio::spawn({
        let svc = svc.clone();
        let clock = clock.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                if let Err(e) = svc.purge_expired_sessions(clock.now()).await {
                    tracing::warn!(error = %e, "purging expired sessions failed");
                }
                // Virtual devices created and never enabled within an hour: their secret
                // was shown long ago and must not become a factor (docs/security.md).
                if let Err(e) = svc.sweep_pending_devices(clock.now()).await {
                    tracing::warn!(error = %e, "sweeping pending devices failed");
                }
                // #17: codes, tokens and grants past their end.
                if let Err(e) = svc.purge_oidc(clock.now()).await {
                    tracing::warn!(error = %e, "purging expired OpenID tokens failed");
                }
                // #17: signing keys replaced on schedule, retired ones deleted when no ID
                // token they signed is still valid.
                if let Err(e) = svc
                    .oidc_key_housekeeping(clock.now(), &Default::default(), &mut rand::rngs::OsRng)
                    .await
                {
                    tracing::warn!(error = %e, "rotating the OpenID signing keys failed");
                }
                // #21: the audit log stays bounded (`audit_prune_after_days`).
                if let Err(e) = svc.prune_audit(clock.now()).await {
                    tracing::warn!(error = %e, "pruning old audit events failed");
                }
                limiter.retain_recent();
                validate_limiter.retain_recent();
                oidc_client_limiter.retain_recent();
            }
        }
    });
    let mut app = app(state, &config.limits);
    let reloader = certs
        .as_ref()
        .map(|c| c.spawn_reloader(Duration::from_secs(config.tls.reload_secs.max(1))));
    if certs.is_some() && config.tls.hsts_max_age_secs > 0 {
        // On every response, errors included: a browser that saw it once never again tries
        // plain HTTP for this host, so a network attacker cannot strip TLS.
        if let Ok(v) =
            axum::http::HeaderValue::try_from(format!("max-age={}", config.tls.hsts_max_age_secs))
        {
            app = app.layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
                axum::http::header::STRICT_TRANSPORT_SECURITY,
                v,
            ));
        }
    }
    let acme_task = match (&acme, &certs) {
        (Some(a), Some(c)) => Some(crate::http::acme::spawn(
            a.clone(),
            c.clone(),
            challenges.clone(),
        )),
        _ => None,
    };
    // One shutdown for both listeners.
    let (down_tx, down_rx) = tokio::sync::watch::channel(false);
    let redirector = redirect.map(|(l, _)| {
        let app = crate::http::redirect::router(&public_url, challenges.clone());
        let limits = config.limits.clone();
        let mut down = down_rx.clone();
        tokio::spawn(async move {
            let stop = async move {
                let _ = down.wait_for(|d| *d).await;
            };
            crate::http::conn::serve(l, app, &limits, None, stop).await;
        })
    });
    let stop = async move {
        shutdown_signal().await;
        let _ = down_tx.send(true);
    };
    crate::http::conn::serve(listener, app, &config.limits, acceptor, stop).await;
    if let Some(r) = redirector {
        let _ = r.await;
    }
    if let Some(r) = reloader {
        r.abort();
    }
    if let Some(t) = acme_task {
        t.abort();
    }
    housekeeping.abort();
    if let Some(r) = radius {
        r.abort();
    }
    svc.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The whole application: the JSON API's routes and the console's, and the layers every
/// request passes. Composed here, so that the API and the console (which share only
/// [`crate::web`]) never import each other.
pub fn app(state: AppState, limits: &Limits) -> Router {
    Router::new()
        .merge(crate::http::routes(&state))
        .merge(crate::console::router(state.clone()))
        .fallback_service(crate::console::fallback(state.clone(), || async {
            crate::http::not_found().await.into_response()
        }))
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        // Before routing reaches any handler or session check: forgery, control characters,
        // no-store (`http/edge.rs`).
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::http::edge::api_edge,
        ))
        .layer(middleware::from_fn_with_state(
            Duration::from_secs(limits.request_timeout_secs.max(1)),
            crate::http::timeout,
        ))
        .layer(middleware::from_fn(crate::http::observe))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// #15 contacts: the first-start line naming the optional step for root's contacts, with the
/// data directory this server was started with, so the command works as printed.
pub fn set_contacts_hint(config: &Config) -> String {
    let mut cmd = String::from("mamori-server");
    if let Some(dir) = &config.data_dir {
        cmd.push_str(&format!(" --data-dir {}", dir.display()));
    }
    format!(
        "optional: give root an email address and phone number to recover with if its MFA \
         device is lost: {cmd} admin set-contacts root --email ADDRESS --phone NUMBER \
         (or, once signed in, in the console under My security credentials)"
    )
}
