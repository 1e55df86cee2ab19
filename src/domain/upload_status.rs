//! Where an upload job stands.

/// Where a job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UploadStatus {
    /// The body is being read and its parts sent.
    Receiving,
    /// Telegram asked to wait (FLOOD_WAIT); the job goes on after.
    Paused,
    /// Every part is on Telegram: the file can be sent.
    Done,
    Failed,
}

impl UploadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Receiving => "receiving",
            Self::Paused => "paused",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "receiving" => Self::Receiving,
            "paused" => Self::Paused,
            "done" => Self::Done,
            _ => Self::Failed,
        }
    }
}
