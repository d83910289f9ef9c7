//! The `bootgate` binary: the command line of [`bootgate::cli`].
fn main() {
    std::process::exit(bootgate::cli::main());
}
