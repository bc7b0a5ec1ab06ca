use std::path::{Path, PathBuf};

/// An error with enough context for one line to the user: the file and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {msg}", path.display())]
    Invalid { path: PathBuf, msg: String },
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
    pub fn invalid(path: impl AsRef<Path>, msg: impl Into<String>) -> Error {
        Error::Invalid {
            path: path.as_ref().to_path_buf(),
            msg: msg.into(),
        }
    }
}
