//! The IAM calls mamori makes: MFA devices, the user, the account's alias, and the account facts
//! `mamori review aws` needs (credential report, account summary, virtual devices).

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_iam::types::{AssignmentStatusType, ReportStateType};
use mamori_otp::Secret;
use zeroize::Zeroizing;

use crate::error::from_sdk;
use crate::{Aws, AwsError};

/// A device assigned to a user (`ListMFADevices`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaDevice {
    /// The serial (a virtual device's ARN).
    pub serial: String,
    /// Its user.
    pub user: String,
    /// When it was enabled (Unix seconds).
    pub enabled: i64,
}

/// A virtual device of the account (`ListVirtualMFADevices`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualMfaDevice {
    /// Its ARN.
    pub serial: String,
    /// The user it is assigned to, if any.
    pub user: Option<String>,
    /// That user's ARN (`arn:aws:iam::ACCOUNT:root` for the root user).
    pub user_arn: Option<String>,
}

/// A device just created: its serial and its seed.
#[derive(Debug)]
pub struct CreatedDevice {
    /// Its ARN.
    pub serial: String,
    /// The TOTP seed (redacted in `Debug`, zeroized on drop).
    pub seed: Secret,
}

/// An IAM user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user name.
    pub name: String,
    /// Its ARN (`arn:aws:iam::ACCOUNT:user/NAME`).
    pub arn: String,
}

impl User {
    /// The account id from the ARN.
    pub fn account_id(&self) -> Option<&str> {
        self.arn.split(':').nth(4).filter(|a| !a.is_empty())
    }
}

/// How many times [`Aws::credential_report`] asks whether the report is ready, and how long it
/// waits between asks: AWS usually has it within seconds.
pub const REPORT_TRIES: u32 = 30;
const REPORT_PAUSE: Duration = Duration::from_secs(2);

impl Aws {
    /// `GetUser`: the named user, or the caller.
    pub fn get_user(&self, name: Option<&str>) -> Result<User, AwsError> {
        let out = self
            .block_on(
                self.iam
                    .get_user()
                    .set_user_name(name.map(String::from))
                    .send(),
            )
            .map_err(|e| from_sdk(&self.ctx("GetUser", None), e))?;
        let u = out.user().ok_or(AwsError::Incomplete {
            operation: "GetUser",
            what: "the user",
        })?;
        Ok(User {
            name: u.user_name().to_string(),
            arn: u.arn().to_string(),
        })
    }

    /// `ListMFADevices` of the user (the caller when `None`: named through `GetUser` first,
    /// which every implementation of the API answers for the caller).
    pub fn list_mfa_devices(&self, user: Option<&str>) -> Result<Vec<MfaDevice>, AwsError> {
        let user = match user {
            Some(u) => u.to_string(),
            None => self.get_user(None)?.name,
        };
        let items = self
            .block_on(
                self.iam
                    .list_mfa_devices()
                    .user_name(user)
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect(),
            )
            .map_err(|e| from_sdk(&self.ctx("ListMFADevices", None), e))?;
        Ok(items
            .into_iter()
            .map(|d| MfaDevice {
                serial: d.serial_number().to_string(),
                user: d.user_name().to_string(),
                enabled: d.enable_date().secs(),
            })
            .collect())
    }

    /// `ListVirtualMFADevices`, assigned or not.
    pub fn list_virtual_mfa_devices(&self) -> Result<Vec<VirtualMfaDevice>, AwsError> {
        let items = self
            .block_on(
                self.iam
                    .list_virtual_mfa_devices()
                    .assignment_status(AssignmentStatusType::Any)
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect(),
            )
            .map_err(|e| from_sdk(&self.ctx("ListVirtualMFADevices", None), e))?;
        Ok(items
            .into_iter()
            .map(|d| VirtualMfaDevice {
                serial: d.serial_number().to_string(),
                user: d.user().map(|u| u.user_name().to_string()),
                user_arn: d.user().map(|u| u.arn().to_string()),
            })
            .collect())
    }

    /// `ListAccountAliases`: the account's alias, if it has one.
    pub fn account_alias(&self) -> Result<Option<String>, AwsError> {
        let out = self
            .block_on(self.iam.list_account_aliases().send())
            .map_err(|e| from_sdk(&self.ctx("ListAccountAliases", None), e))?;
        Ok(out.account_aliases().first().cloned())
    }

    /// `CreateVirtualMFADevice` named `name`.
    pub fn create_virtual_mfa_device(&self, name: &str) -> Result<CreatedDevice, AwsError> {
        let out = self
            .block_on(
                self.iam
                    .create_virtual_mfa_device()
                    .virtual_mfa_device_name(name)
                    .send(),
            )
            .map_err(
                |e| match from_sdk(&self.ctx("CreateVirtualMFADevice", None), e) {
                    AwsError::Service { code, .. } if code == "EntityAlreadyExists" => {
                        AwsError::DeviceExists(name.to_string())
                    }
                    other => other,
                },
            )?;
        let incomplete = |what| AwsError::Incomplete {
            operation: "CreateVirtualMFADevice",
            what,
        };
        let d = out.virtual_mfa_device().ok_or(incomplete("the device"))?;
        // The seed arrives as the Base32 text's bytes; the copy is wiped after parsing.
        let text = Zeroizing::new(
            d.base32_string_seed()
                .map(|b| String::from_utf8_lossy(b.as_ref()).into_owned())
                .ok_or(incomplete("the seed"))?,
        );
        let seed = Secret::from_base32(&text).map_err(|_| incomplete("a valid Base32 seed"))?;
        Ok(CreatedDevice {
            serial: d.serial_number().to_string(),
            seed,
        })
    }

    /// `EnableMFADevice` with two consecutive codes.
    pub fn enable_mfa_device(
        &self,
        user: &str,
        serial: &str,
        code1: &str,
        code2: &str,
    ) -> Result<(), AwsError> {
        self.block_on(
            self.iam
                .enable_mfa_device()
                .user_name(user)
                .serial_number(serial)
                .authentication_code1(code1)
                .authentication_code2(code2)
                .send(),
        )
        .map_err(
            |e| match from_sdk(&self.ctx("EnableMFADevice", Some(serial)), e) {
                AwsError::Service { code, message, .. } if code == "LimitExceeded" => {
                    AwsError::TooManyDevices {
                        user: user.to_string(),
                        message,
                    }
                }
                other => other,
            },
        )?;
        Ok(())
    }

    /// `DeactivateMFADevice`.
    pub fn deactivate_mfa_device(&self, user: &str, serial: &str) -> Result<(), AwsError> {
        self.block_on(
            self.iam
                .deactivate_mfa_device()
                .user_name(user)
                .serial_number(serial)
                .send(),
        )
        .map_err(|e| from_sdk(&self.ctx("DeactivateMFADevice", None), e))?;
        Ok(())
    }

    /// `DeleteVirtualMFADevice`.
    pub fn delete_virtual_mfa_device(&self, serial: &str) -> Result<(), AwsError> {
        self.block_on(
            self.iam
                .delete_virtual_mfa_device()
                .serial_number(serial)
                .send(),
        )
        .map_err(|e| from_sdk(&self.ctx("DeleteVirtualMFADevice", None), e))?;
        Ok(())
    }

    /// `GenerateCredentialReport` until it is complete, then `GetCredentialReport`: the CSV.
    pub fn credential_report(&self) -> Result<Vec<u8>, AwsError> {
        for attempt in 0..REPORT_TRIES {
            let out = self
                .block_on(self.iam.generate_credential_report().send())
                .map_err(|e| from_sdk(&self.ctx("GenerateCredentialReport", None), e))?;
            if out.state() == Some(&ReportStateType::Complete) {
                let report = self
                    .block_on(self.iam.get_credential_report().send())
                    .map_err(|e| from_sdk(&self.ctx("GetCredentialReport", None), e))?;
                return report
                    .content()
                    .map(|b| b.as_ref().to_vec())
                    .ok_or(AwsError::Incomplete {
                        operation: "GetCredentialReport",
                        what: "the report",
                    });
            }
            if attempt + 1 < REPORT_TRIES {
                std::thread::sleep(REPORT_PAUSE);
            }
        }
        Err(AwsError::ReportNotReady(REPORT_TRIES))
    }

    /// `GetAccountSummary`: the account's counters and flags (`AccountMFAEnabled`, …).
    pub fn account_summary(&self) -> Result<BTreeMap<String, i32>, AwsError> {
        let out = self
            .block_on(self.iam.get_account_summary().send())
            .map_err(|e| from_sdk(&self.ctx("GetAccountSummary", None), e))?;
        Ok(out
            .summary_map()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.as_str().to_string(), *v))
                    .collect()
            })
            .unwrap_or_default())
    }
}
