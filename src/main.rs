fn main() {
    std::process::exit(bootgate::cli::main());
}
