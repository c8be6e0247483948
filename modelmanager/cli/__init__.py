"""The command line: argparse front end over the services."""
