//! The port catalog.
