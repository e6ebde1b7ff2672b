//! Enrolling a virtual MFA device: create it, keep its seed in the vault, send two consecutive
//! codes, enable it. Anything failing after the device exists removes it again (and the seed's
//! entry), so nothing is left half-done: no device without a seed, no seed without a device.

use mamori_otp::{Generator, OtpParams, Secret};

use crate::{Aws, AwsError};

/// What the enrolment needs from its caller: the vault, the clock and the person watching.
pub trait Steps {
    /// Keeps `seed` in the vault as the entry of device `serial`.
    fn store_seed(&mut self, serial: &str, seed: &Secret) -> Result<(), AwsError>;
    /// Removes the entry stored by [`Steps::store_seed`] (rollback).
    fn forget_seed(&mut self, serial: &str) -> Result<(), AwsError>;
    /// Unix time now.
    fn now(&mut self) -> u64;
    /// Returns at Unix time `at` or later (a countdown for a person, a sleep for a test).
    fn wait_until(&mut self, at: u64);
}

/// A finished enrolment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    /// The device's ARN.
    pub serial: String,
    /// The user it is enabled for.
    pub user: String,
    /// The time steps (Unix time / 30) of the two codes sent.
    pub steps: (u64, u64),
}

/// How far enrolment got, for the rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Created,
    Stored,
}

/// Creates device `name`, keeps its seed, and enables it for `user` with the codes of two
/// consecutive 30-second steps (waiting for the second, as a person would).
pub fn enroll(
    aws: &Aws,
    user: &str,
    name: &str,
    steps: &mut dyn Steps,
) -> Result<Enrolled, AwsError> {
    let device = aws.create_virtual_mfa_device(name)?;
    let serial = device.serial.clone();
    let mut stage = Stage::Created;
    match finish(aws, user, &device, steps, &mut stage) {
        Ok(e) => Ok(e),
        Err(cause) => Err(rollback(aws, &serial, stage, steps, cause)),
    }
}

fn finish(
    aws: &Aws,
    user: &str,
    device: &crate::iam::CreatedDevice,
    steps: &mut dyn Steps,
    stage: &mut Stage,
) -> Result<Enrolled, AwsError> {
    steps.store_seed(&device.serial, &device.seed)?;
    *stage = Stage::Stored;
    let generator = Generator::new(&device.seed, OtpParams::totp())
        .map_err(|e| AwsError::Vault(format!("the device's seed cannot make codes: {e}")))?;
    let first_step = steps.now() / 30;
    let code1 = generator.at_counter(first_step);
    steps.wait_until((first_step + 1) * 30);
    let code2 = generator.at_counter(first_step + 1);
    aws.enable_mfa_device(user, &device.serial, code1.as_str(), code2.as_str())?;
    Ok(Enrolled {
        serial: device.serial.clone(),
        user: user.to_string(),
        steps: (first_step, first_step + 1),
    })
}

/// Deletes the device (deactivating it first if AWS says it is in use: the enable call may
/// have succeeded without us hearing so) and forgets its seed.
fn rollback(
    aws: &Aws,
    serial: &str,
    stage: Stage,
    steps: &mut dyn Steps,
    cause: AwsError,
) -> AwsError {
    let mut problems = Vec::new();
    let deleted = match aws.delete_virtual_mfa_device(serial) {
        Ok(()) => Ok(()),
        Err(AwsError::Service { code, .. }) if code == "DeleteConflict" => {
            let user = aws
                .list_virtual_mfa_devices()
                .ok()
                .and_then(|all| all.into_iter().find(|d| d.serial == serial))
                .and_then(|d| d.user);
            match user {
                Some(u) => aws
                    .deactivate_mfa_device(&u, serial)
                    .and_then(|()| aws.delete_virtual_mfa_device(serial)),
                None => aws.delete_virtual_mfa_device(serial),
            }
        }
        Err(e) => Err(e),
    };
    if let Err(e) = deleted {
        problems.push(e.to_string());
    }
    if stage == Stage::Stored {
        if let Err(e) = steps.forget_seed(serial) {
            problems.push(format!("the vault entry could not be removed: {e}"));
        }
    }
    if problems.is_empty() {
        AwsError::RolledBack {
            serial: serial.to_string(),
            cause: Box::new(cause),
        }
    } else {
        AwsError::RollbackFailed {
            serial: serial.to_string(),
            cause: Box::new(cause),
            cleanup: problems.join("; "),
        }
    }
}
