//! End-to-end tests: the real `weir` binary, the real bundled plugins, real files.

mod pg_support;
mod support;

mod bad_config;
mod bank_recon;
mod cluster;
mod contract_versions;
mod corpora;
mod crash;
mod csv_policies;
mod fanout;
mod fanout_kill;
mod fanout_postgres;
mod fanout_replay;
mod grants;
mod hr_directory;
mod http_grants;
mod incremental;
mod one_writer;
mod patient_portal;
mod plugins;
mod polyglot;
mod portal;
mod postgres;
mod sandbox;
mod scaffold;
mod select_transform;
mod serve;
mod serve_load;
mod serve_plugins;
mod serve_schedule;
mod serve_security;
mod serve_support;
mod sink;
mod sql_extract;
mod upsert;
