//! The importer against real databases (both engines) and real files: CSV, zip, and the partner's base64
//! envelope, good and hostile.

mod catalog;
mod declarations;
mod harness;
mod hostile;
mod loads;
