//! Where the CLI finds the server and its token: flags, then environment variables, then the config file
//! (`$WANKA_CONFIG`, default `~/.config/wanka/config.toml`), then the admin token a local server wrote.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use wanka_server::client::Client;

/// The server address used when nothing else names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7070";

/// Connection options shared by the client commands.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Connection {
    /// Server URL (default: the config file's `server`, else http://127.0.0.1:7070).
    #[arg(long, env = "WANKA_SERVER", global = true)]
    pub server: Option<String>,
    /// Bearer token (default: the config file's `token`, else ./wanka-data/admin.token).
    #[arg(long, env = "WANKA_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the bearer token.
    #[arg(long, env = "WANKA_TOKEN_FILE", global = true)]
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    server: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
}

fn config_path() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("WANKA_CONFIG") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".config/wanka/config.toml"))
}

fn read_token(path: &Path) -> Result<String> {
    let t = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the token file {}", path.display()))?;
    let t = t.trim().to_string();
    if t.is_empty() {
        bail!("the token file {} is empty", path.display());
    }
    Ok(t)
}

impl Connection {
    /// The connection from environment variables alone (for the Slurm command names, which take no wanka
    /// flags).
    pub fn from_env() -> Connection {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Connection {
            server: var("WANKA_SERVER"),
            token: var("WANKA_TOKEN"),
            token_file: var("WANKA_TOKEN_FILE").map(PathBuf::from),
        }
    }

    /// A client for the configured server.
    pub fn client(&self) -> Result<Client> {
        let (server, token) = self.resolve()?;
        Ok(Client::new(&server, token))
    }

    /// The server URL and token, from the flags, the environment, the config file or the defaults.
    pub fn resolve(&self) -> Result<(String, Option<String>)> {
        let file = match config_path() {
            Some(p) if p.exists() => {
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("cannot read {}", p.display()))?;
                toml::from_str::<ConfigFile>(&text)
                    .with_context(|| format!("{}: not a valid wanka config file", p.display()))?
            }
            _ => ConfigFile::default(),
        };
        let server = self
            .server
            .clone()
            .or(file.server)
            .unwrap_or_else(|| DEFAULT_SERVER.to_string());
        let token = match (&self.token, &self.token_file, file.token, file.token_file) {
            (Some(t), _, _, _) => Some(t.clone()),
            (None, Some(p), _, _) => Some(read_token(p)?),
            (None, None, Some(t), _) => Some(t),
            (None, None, None, Some(p)) => Some(read_token(&p)?),
            (None, None, None, None) => {
                let local = Path::new("wanka-data/admin.token");
                local.exists().then(|| read_token(local)).transpose()?
            }
        };
        Ok((server, token))
    }
}
