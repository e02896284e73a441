package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/celpolicy/celpolicy/engine"
)

func main() {
	out := flag.String("o", "", "file to write (default: standard output)")
	flag.Parse()
	data, err := engine.Schema()
	if err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
	if *out == "" {
		_, err = os.Stdout.Write(data)
	} else {
		err = os.WriteFile(*out, data, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
}
