//! Weighted choices as the command line and the scenario files write them:
//! journeys (`browse=5,search=2`), protocols (`rest=1,grpc=1`) and an
//! open-model mix of calls (`rest:list_projects=6,grpc:review=1`).

use std::fmt;
use std::str::FromStr;

/// Weighted choices: `NAME=WEIGHT,NAME=WEIGHT` (a name without `=N` weighs 1);
/// only positive weights are kept, and at least one is needed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Weights<T>(pub Vec<(T, u32)>);

impl<T: FromStr<Err = String>> FromStr for Weights<T> {
    type Err = String;

    fn from_str(text: &str) -> Result<Weights<T>, String> {
        let mut weights = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part.split_once('=').unwrap_or((part, "1"));
            let weight: u32 =
                weight.trim().parse().map_err(|_| format!("weight `{weight}` of `{name}` is not a whole number"))?;
            let item = name.trim().parse()?;
            if weight > 0 {
                weights.push((item, weight));
            }
        }
        if weights.is_empty() {
            return Err(format!("nothing with a positive weight in `{text}`"));
        }
        Ok(Weights(weights))
    }
}

impl<T: fmt::Display> fmt::Display for Weights<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (item, weight)) in self.0.iter().enumerate() {
            write!(f, "{}{item}={weight}", if i == 0 { "" } else { "," })?;
        }
        Ok(())
    }
}
