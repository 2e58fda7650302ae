//! `utcp`: the command-line front end of the bench.

fn main() {
    println!("utcp: subcommands arrive with the core");
}
