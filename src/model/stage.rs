//! The four stages of a table's task DAG, named as the state store, the plan and the messages
//! name them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Extract,
    WriteIceberg,
    Load,
    Verify,
}

impl Stage {
    pub const ALL: [Stage; 4] = [
        Stage::Extract,
        Stage::WriteIceberg,
        Stage::Load,
        Stage::Verify,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Stage::Extract => "extract",
            Stage::WriteIceberg => "write_iceberg",
            Stage::Load => "load",
            Stage::Verify => "verify",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.name() == s)
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
