//! One connection to IAM and STS for one profile.

use std::future::Future;

use aws_config::meta::region::RegionProviderChain;
use aws_config::BehaviorVersion;
use aws_credential_types::provider::ProvideCredentials;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_types::region::Region;

use crate::credentials::Profile;
use crate::error::Context;
use crate::AwsError;

/// IAM is global and STS has a global endpoint: a profile without a region still works.
const FALLBACK_REGION: &str = "us-east-1";

/// Clients for IAM and STS, signed with the profile's long-term credentials (the source
/// profile's for a role profile), and the runtime that drives them. Every call blocks.
pub struct Aws {
    rt: tokio::runtime::Runtime,
    pub(crate) iam: aws_sdk_iam::Client,
    pub(crate) sts: aws_sdk_sts::Client,
    profile: Profile,
    label: String,
}

impl std::fmt::Debug for Aws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aws")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl Aws {
    /// Finds the credentials of `profile` (see [`credentials::read`]) and builds the clients. The endpoint comes from the SDK's usual settings
    /// (`AWS_ENDPOINT_URL`, `endpoint_url` in the profile, …).
    ///
    /// Fails with [`AwsError::NoCredentials`] when there are none, before any request.
    pub fn connect(profile: Profile) -> Result<Aws, AwsError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| AwsError::Runtime(e.to_string()))?;
        let (iam, sts) = rt.block_on(connect(&profile))?;
        Ok(Aws {
            rt,
            iam,
            sts,
            label: profile.label(),
            profile,
        })
    }

    /// The profile in use.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    pub(crate) fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    pub(crate) fn ctx<'a>(
        &'a self,
        operation: &'static str,
        serial: Option<&'a str>,
    ) -> Context<'a> {
        Context {
            operation,
            profile: self.profile_label(),
            serial,
        }
    }

    fn profile_label(&self) -> &str {
        &self.label
    }
}

async fn connect(
    profile: &Profile,
) -> Result<(aws_sdk_iam::Client, aws_sdk_sts::Client), AwsError> {
    let base = profile.credentials_profile().to_string();
    // The SDK's HTTPS client on rustls with ring (its default would bring aws-lc-rs).
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    // The providers get our HTTP client: the SDK's defaults would look for its own (and the
    // default region chain would ask instance metadata, which a terminal tool has no use for).
    let provider_config = aws_config::provider_config::ProviderConfig::without_region()
        .with_http_client(http.clone());
    let region = RegionProviderChain::first_try(
        aws_config::environment::region::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(
        aws_config::profile::region::ProfileFileRegionProvider::builder()
            .configure(&provider_config)
            .profile_name(&profile.name)
            .build(),
    )
    .or_else(Region::new(FALLBACK_REGION));
    // A chosen profile (or a role's source profile) is used alone, as the AWS CLI does; the
    // default profile comes after the environment's variables. No instance metadata: this is a
    // terminal tool, and probing it only delays the "no credentials" error.
    let provider = aws_config::profile::ProfileFileCredentialsProvider::builder()
        .configure(&provider_config)
        .profile_name(&base)
        .build();
    let chain = if profile.chosen || profile.role_arn.is_some() {
        aws_config::meta::credentials::CredentialsProviderChain::first_try("Profile", provider)
    } else {
        aws_config::meta::credentials::CredentialsProviderChain::first_try(
            "Environment",
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        )
        .or_else("Profile", provider)
    };
    if let Err(e) = chain.provide_credentials().await {
        return Err(AwsError::NoCredentials {
            profile: format!("profile {base}"),
            detail: aws_sdk_iam::error::DisplayErrorContext(&e)
                .to_string()
                .replace('\n', " "),
        });
    }
    let config = aws_config::defaults(BehaviorVersion::latest())
        .profile_name(&profile.name)
        .http_client(http)
        .region(region)
        .credentials_provider(chain)
        .load()
        .await;
    Ok((
        aws_sdk_iam::Client::new(&config),
        aws_sdk_sts::Client::new(&config),
    ))
}
