//! The probe engine.
