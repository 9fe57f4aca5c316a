package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/urfave/cli/v2"
)

// applyConfigFile reads the TOML file named by --config, if any, and sets
// every flag the command line did not set from it. Keys are flag names
// (or their aliases, such as the prototype's num_servers); '_' and '-' are
// interchangeable. An unknown key is a usage error, so a typo is not
// silently ignored.
func applyConfigFile(c *cli.Context) error {
	path := c.String("config")
	if path == "" {
		return nil
	}
	var values map[string]any
	if _, err := toml.DecodeFile(path, &values); err != nil {
		return usageError(fmt.Errorf("--config %s: %w", path, err))
	}
	names := map[string]string{} // accepted key -> canonical flag name
	for _, f := range c.Command.Flags {
		for _, n := range f.Names() {
			if f.Names()[0] != "config" {
				names[n] = f.Names()[0]
				names[strings.ReplaceAll(n, "-", "_")] = f.Names()[0]
			}
		}
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		flag, ok := names[k]
		if !ok {
			return usageError(fmt.Errorf("--config %s: unknown key %q", path, k))
		}
		if c.IsSet(flag) {
			continue // the command line wins
		}
		v := values[k]
		switch v.(type) {
		case string, int64, float64, bool:
		default:
			return usageError(fmt.Errorf("--config %s: key %q must be a string, number or boolean, got %T", path, k, v))
		}
		if err := c.Set(flag, fmt.Sprint(v)); err != nil {
			return usageError(fmt.Errorf("--config %s: key %q: %w", path, k, err))
		}
	}
	return nil
}
