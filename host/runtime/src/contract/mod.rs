//! The contract versions this host speaks, one module per version (as Zed's extension host
//! does): each implements that version's host imports, delegating to the newest where the two
//! agree, and converts what differs. A component built against any listed version loads and
//! runs; the engine sees one set of types (0.2.0's, where they differ).

mod v0_1_0;
mod v0_2_0;

use wasmtime::component::{HasSelf, Linker};

use crate::state::PluginState;

/// A version of the `weir:plugin` contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Contract {
    V0_1_0,
    V0_2_0,
}

impl Contract {
    /// Every version this host runs, oldest first.
    pub const ALL: [Contract; 2] = [Self::V0_1_0, Self::V0_2_0];

    /// The version `plugins/sdk` and `weir plugins new` build against.
    pub const NEWEST: Contract = Self::V0_2_0;

    /// `0.1.0`, as in `weir:plugin@0.1.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V0_1_0 => "0.1.0",
            Self::V0_2_0 => "0.2.0",
        }
    }

    /// The version written `version`, if this host runs it.
    pub fn parse(version: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == version)
    }

    /// The versions this host runs, for messages: `0.1.0, 0.2.0`.
    pub fn list() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

impl std::fmt::Display for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Link the host imports of every version: `weir:plugin/log` and `sql` at each version (the
/// worlds of one version share their imports, so one world's `add_to_linker` serves all four),
/// and the type-only `types` instance of the versions whose bindings reuse older types.
pub(crate) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    weir_bindings::v0_1_0::transformer::TransformerPlugin::add_to_linker::<_, HasSelf<PluginState>>(
        linker,
        |state| state,
    )?;
    weir_bindings::v0_2_0::transformer::TransformerPlugin::add_to_linker::<_, HasSelf<PluginState>>(
        linker,
        |state| state,
    )?;
    Ok(())
}
