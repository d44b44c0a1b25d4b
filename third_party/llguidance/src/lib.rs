//! Links llguidance's C API (llguidance.h: llg_new_tokenizer_v2, llg_new_matcher, ...) into
//! libkinfer_llguidance.a. Nothing of Kinfer's own is here.
pub use llguidance;
