//! The settings file: what `breeze` uses when the command line does not say, so `breeze`
//! alone starts a known profile.
//!
//! ```toml
//! # $XDG_CONFIG_HOME/breeze/config.toml (~/.config/breeze/config.toml), or --config FILE
//! server = "192.168.1.10:7300"
//! user = "alice"
//! download_dir = "/home/alice/Downloads"
//! history_days = 365        # forget messages older than this; keep all when absent
//! max_direct_channels = 64  # direct channels held at most (default 64)
//! channel_idle_secs = 180   # beyond the cap, close a channel idle this long (default 180)
//! ```
//!
//! A flag on the command line always wins over the file. A file that is missing is no
//! settings; one that does not parse is an error (a typo should not start another profile).

use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: Option<String>,
    pub user: Option<String>,
    pub download_dir: Option<PathBuf>,
    pub history_days: Option<u32>,
    pub max_direct_channels: Option<usize>,
    pub channel_idle_secs: Option<u64>,
}

impl Settings {
    /// The default settings file, if there is a place for one.
    pub fn default_path() -> Option<PathBuf> {
        let config = match std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => {
                PathBuf::from(std::env::var_os("HOME").filter(|d| !d.is_empty())?).join(".config")
            }
        };
        Some(config.join("breeze").join("config.toml"))
    }

    /// Reads `path`; no file is no settings, when `required` is false.
    pub fn load(path: &Path, required: bool) -> Result<Settings, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Settings::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                Ok(Settings::default())
            }
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    fn parse(text: &str) -> Result<Settings, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_read_and_unknown_ones_are_refused() {
        let settings = Settings::parse(
            "server = \"10.0.0.1:7300\"\nuser = \"alice\"\ndownload_dir = \"/tmp/in\"\n\
             history_days = 30\nmax_direct_channels = 8\nchannel_idle_secs = 20\n",
        )
        .unwrap();
        assert_eq!(settings.server.as_deref(), Some("10.0.0.1:7300"));
        assert_eq!(settings.user.as_deref(), Some("alice"));
        assert_eq!(settings.download_dir, Some(PathBuf::from("/tmp/in")));
        assert_eq!(settings.history_days, Some(30));
        assert_eq!(settings.max_direct_channels, Some(8));
        assert_eq!(settings.channel_idle_secs, Some(20));
        assert!(Settings::parse("sever = \"x\"")
            .unwrap_err()
            .contains("sever"));
        assert_eq!(Settings::parse("").unwrap(), Settings::default());
    }

    #[test]
    fn a_missing_file_is_no_settings_unless_it_was_asked_for() {
        let path = Path::new("/nonexistent/breeze/config.toml");
        assert_eq!(Settings::load(path, false).unwrap(), Settings::default());
        assert!(Settings::load(path, true).is_err());
    }
}
