//! The profile: which one, and what it says about MFA (`mfa_serial`, `role_arn`,
//! `source_profile`, `role_session_name`, `duration_seconds`). Read with the SDK's own parser,
//! so `AWS_CONFIG_FILE`, `AWS_SHARED_CREDENTIALS_FILE` and `AWS_PROFILE` mean what they mean
//! to every other AWS tool.

use std::borrow::Cow;

use aws_runtime::env_config::file::EnvConfigFiles;
use aws_types::os_shim_internal::{Env, Fs};

use crate::AwsError;

/// One profile's MFA-related settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    /// The profile's name (`default` when none was chosen).
    pub name: String,
    /// Whether the name was chosen (`--profile` or `AWS_PROFILE`) rather than defaulted; a
    /// chosen profile must exist.
    pub chosen: bool,
    /// `mfa_serial`: the device whose code the session calls send.
    pub mfa_serial: Option<String>,
    /// `role_arn`: assume this role with MFA instead of getting a session token.
    pub role_arn: Option<String>,
    /// `source_profile`: whose credentials assume the role.
    pub source_profile: Option<String>,
    /// `role_session_name`.
    pub role_session_name: Option<String>,
    /// `duration_seconds`.
    pub duration_seconds: Option<u32>,
    /// `region`, handed to `mamori aws exec`'s command when its environment has none.
    pub region: Option<String>,
}

impl Profile {
    /// "profile NAME", for messages.
    pub fn label(&self) -> String {
        format!("profile {}", self.name)
    }

    /// The profile whose long-term credentials sign the STS call: the `source_profile` of a
    /// role profile, else the profile itself.
    pub fn credentials_profile(&self) -> &str {
        match (&self.role_arn, &self.source_profile) {
            (Some(_), Some(source)) => source,
            _ => &self.name,
        }
    }
}

/// Reads the profile `name` (else `AWS_PROFILE`, else `default`) from the real files. No
/// network: a cached session is found with this alone.
pub fn read(name: Option<&str>) -> Result<Profile, AwsError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| AwsError::Runtime(e.to_string()))?;
    rt.block_on(load_from(&Fs::real(), &Env::real(), name))
}

/// [`load`] over given files and environment (tests).
pub async fn load_from(fs: &Fs, env: &Env, name: Option<&str>) -> Result<Profile, AwsError> {
    let from_env = env.get("AWS_PROFILE").ok().filter(|p| !p.is_empty());
    let chosen = name.is_some() || from_env.is_some();
    let selected: String = match (name, from_env) {
        (Some(n), _) => n.to_string(),
        (None, Some(n)) => n,
        (None, None) => "default".to_string(),
    };
    let set = aws_config::profile::load(
        fs,
        env,
        &EnvConfigFiles::default(),
        Some(Cow::Owned(selected.clone())),
    )
    .await
    .map_err(|e| AwsError::Config(e.to_string().replace('\n', " ")))?;
    let Some(p) = set.get_profile(&selected) else {
        if chosen {
            return Err(AwsError::NoProfile(selected));
        }
        // No files, or no [default]: the environment's credentials alone.
        return Ok(Profile {
            name: selected,
            ..Profile::default()
        });
    };
    let get = |k: &str| {
        p.get(k)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from)
    };
    let duration_seconds = match get("duration_seconds") {
        None => None,
        Some(v) => Some(v.parse::<u32>().map_err(|_| {
            AwsError::Config(format!(
                "duration_seconds = {v:?} in profile {selected} is not a number of seconds"
            ))
        })?),
    };
    let profile = Profile {
        name: selected.clone(),
        chosen,
        mfa_serial: get("mfa_serial"),
        role_arn: get("role_arn"),
        source_profile: get("source_profile"),
        role_session_name: get("role_session_name"),
        duration_seconds,
        region: get("region"),
    };
    if profile.role_arn.is_some() && profile.source_profile.is_none() {
        return Err(AwsError::Config(format!(
            "profile {selected} has role_arn but no source_profile; mamori assumes roles with the source profile's credentials"
        )));
    }
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        files: &[(&str, &str)],
        env: &[(&str, &str)],
        name: Option<&str>,
    ) -> Result<Profile, AwsError> {
        let mut vars = vec![("HOME", "/home/u")];
        vars.extend_from_slice(env);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| AwsError::Runtime(e.to_string()))?;
        rt.block_on(load_from(
            &Fs::from_slice(files),
            &Env::from_slice(&vars),
            name,
        ))
    }

    const CONFIG: &str = "[default]\nregion = us-east-1\nmfa_serial = arn:aws:iam::111122223333:mfa/alice\n\n[profile admin]\nrole_arn = arn:aws:iam::111122223333:role/Admin\nsource_profile = default\nmfa_serial = arn:aws:iam::111122223333:mfa/alice\nduration_seconds = 1800\n\n[profile broken]\nrole_arn = arn:aws:iam::111122223333:role/Admin\n\n[profile bad-duration]\nduration_seconds = soon\n";

    #[test]
    fn reads_mfa_serial_role_and_source_profile() -> Result<(), AwsError> {
        let files = [("/home/u/.aws/config", CONFIG)];
        let d = run(&files, &[], None)?;
        assert_eq!(d.name, "default");
        assert!(!d.chosen);
        assert_eq!(
            d.mfa_serial.as_deref(),
            Some("arn:aws:iam::111122223333:mfa/alice")
        );
        assert_eq!(d.credentials_profile(), "default");
        let a = run(&files, &[], Some("admin"))?;
        assert_eq!(
            a.role_arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/Admin")
        );
        assert_eq!(a.credentials_profile(), "default");
        assert_eq!(a.duration_seconds, Some(1800));
        let e = run(&files, &[("AWS_PROFILE", "admin")], None)?;
        assert_eq!(e, a);
        Ok(())
    }

    #[test]
    fn a_chosen_profile_must_exist_and_be_usable() {
        let files = [("/home/u/.aws/config", CONFIG)];
        let err = |name| {
            run(&files, &[], Some(name))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            err("nope"),
            "there is no AWS profile \"nope\" in the AWS config or credentials files"
        );
        assert!(err("broken").contains("has role_arn but no source_profile"));
        assert!(err("bad-duration").contains("is not a number of seconds"));
    }

    #[test]
    fn no_files_is_the_environment_alone() -> Result<(), AwsError> {
        let p = run(&[], &[], None)?;
        assert_eq!(p.name, "default");
        assert_eq!(p.mfa_serial, None);
        Ok(())
    }
}
