//! placeholder until the demo generator lands
pub fn ensure(_p: &std::path::Path, _r: u64) -> Result<bool, DemoError> { Ok(false) }
#[derive(Debug)] pub struct DemoError(pub String);
impl std::fmt::Display for DemoError { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(&self.0) } }
