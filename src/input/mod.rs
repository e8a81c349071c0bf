//! Values from outside that more than one front end reads, checked the
//! same way everywhere: durations (`--max-time`, a configuration file's
//! `max_time`) and the responder's shared secret file.

pub mod duration;
pub mod secret;
