//! Loading what every command needs: the catalog (built-in plus the operator's file) and the normalizer.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use wanka_model::{Catalog, Performance, ThroughputMatrix};

/// Options shared by every command.
#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// Extra catalog entries (TOML, same format as the built-in catalog): adds models or overrides by name.
    #[arg(long, global = true, env = "WANKA_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Throughput matrix in Gavel's simulation_throughputs.json format, used to normalize job classes.
    #[arg(long, global = true, env = "WANKA_THROUGHPUT")]
    pub throughput: Option<PathBuf>,
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

impl Common {
    /// The catalog with the operator's additions.
    pub fn catalog(&self) -> Result<Catalog> {
        let mut catalog = Catalog::builtin();
        if let Some(path) = &self.catalog {
            catalog.extend_toml(&read(path)?, &path.display().to_string())?;
        }
        Ok(catalog)
    }

    /// The built-in fault book with the operator's file over it.
    pub fn fault_book(&self, path: Option<&Path>) -> Result<wanka_model::FaultBook> {
        let mut book = wanka_model::FaultBook::builtin();
        if let Some(p) = path {
            book.extend_toml(&read(p)?, &p.display().to_string())?;
        }
        Ok(book)
    }

    /// The catalog and the normalizer built on it.
    pub fn performance(&self) -> Result<(Catalog, Performance)> {
        let catalog = self.catalog()?;
        let matrix = match &self.throughput {
            Some(path) => ThroughputMatrix::from_gavel_json(
                &read(path)?,
                &path.display().to_string(),
                &catalog,
            )?,
            None => ThroughputMatrix::new(),
        };
        let perf = Performance::new(&catalog, matrix)
            .context("the catalog must contain the reference model")?;
        Ok((catalog, perf))
    }
}
