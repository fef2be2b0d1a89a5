"""Every command-line entry point: argument parsing and main() only, through one error/exit-code wrapper
(sa_lib.cli.command). Library modules keep no argparse."""
