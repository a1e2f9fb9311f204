package main

import (
	"fmt"
	"io"
)

// subcommand splits the arguments of command name into its subcommand and
// the subcommand's arguments. With no subcommand, or with help, it prints
// usage and reports done; with no subcommand it also returns a usage
// error.
func subcommand(args []string, name, usage string, stdout io.Writer) (sub string, rest []string, done bool, err error) {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return "", nil, true, fmt.Errorf("%w: %s needs a subcommand", errUsage, name)
		}
		return "", nil, true, nil
	}
	return args[0], args[1:], false, nil
}
