use std::path::{Path, PathBuf};

/// An error with enough context for one line to the user: the file and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    /// An I/O error on a file.
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    #[error("{}: {msg}", path.display())]
    /// A file that is not what giga can use, and why.
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, worded to follow the file's name.
        msg: String,
    },
    #[error("{0}")]
    /// What the pixels make impossible, found while streaming them (an image with no
    /// opaque pixel to fill from); the caller names the file with [`Error::at`].
    Image(String),
    #[error("internal error (a bug in giga, please report it): {0}")]
    /// A broken promise inside giga.
    Internal(String),
    #[error("{0}")]
    /// A service could not start (giga serve: nothing to serve, the address taken).
    Service(String),
}

/// giga's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Names the file an [`Error::Image`] is about; other errors stay as they are.
    pub fn at(self, path: impl AsRef<Path>) -> Error {
        match self {
            Error::Image(msg) => Error::invalid(path, msg),
            e => e,
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
    /// `path` is not usable: `msg` says why, as it follows the file's name.
    pub fn invalid(path: impl AsRef<Path>, msg: impl Into<String>) -> Error {
        Error::Invalid {
            path: path.as_ref().to_path_buf(),
            msg: msg.into(),
        }
    }
}
