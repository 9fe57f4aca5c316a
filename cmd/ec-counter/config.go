package main

import (
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
	"github.com/ec-counter/ec-counter/internal/boundedfile"
	"github.com/urfave/cli/v2"
)

// maxConfigFile bounds a --config file.
const maxConfigFile = 1 << 20

// applyConfigFile reads the TOML file named by --config, if any, and sets
// every flag the command line did not set from it (see configValues).
func applyConfigFile(c *cli.Context) error {
	path := c.String("config")
	if path == "" {
		return nil
	}
	data, err := boundedfile.ReadFile(path, maxConfigFile)
	if err == nil && len(data) == 0 {
		// Most likely not what was meant: a FIFO nobody writes to, say.
		err = fmt.Errorf("%s is empty", path)
	}
	if err != nil {
		return usageError(fmt.Errorf("--config: %w: not a config file", err))
	}
	values, err := configValues(data, configKeys(c.Command.Flags))
	if err != nil {
		return usageError(fmt.Errorf("--config %s: %w", path, err))
	}
	flags := make([]string, 0, len(values))
	for f := range values {
		flags = append(flags, f)
	}
	sort.Strings(flags)
	for _, flag := range flags {
		if c.IsSet(flag) {
			continue // the command line wins
		}
		if err := c.Set(flag, values[flag]); err != nil {
			return usageError(fmt.Errorf("--config %s: %s: %w", path, flag, err))
		}
	}
	return nil
}

// flagKind is what a flag's value must be.
type flagKind int

const (
	kindString flagKind = iota
	kindInt
	kindFloat
	kindDuration
	kindBool
)

// configKey is a key a config file may hold: the flag it sets and its kind.
type configKey struct {
	flag string
	kind flagKind
}

// configKeys maps every key a config file may hold to its flag: the flag's
// names and aliases (such as the prototype's num_servers), with '_' and '-'
// interchangeable. --config itself and --help are not settings.
func configKeys(flags []cli.Flag) map[string]configKey {
	keys := map[string]configKey{}
	for _, f := range flags {
		name := f.Names()[0]
		if name == "config" || name == "help" {
			continue
		}
		k := configKey{flag: name}
		switch f.(type) {
		case *cli.IntFlag, *cli.Uint64Flag, *cli.Int64Flag:
			k.kind = kindInt
		case *cli.Float64Flag:
			k.kind = kindFloat
		case *cli.DurationFlag:
			k.kind = kindDuration
		case *cli.BoolFlag:
			k.kind = kindBool
		}
		for _, n := range f.Names() {
			keys[n] = k
			keys[strings.ReplaceAll(n, "-", "_")] = k
		}
	}
	return keys
}

// configValues parses a TOML config file: every key must be one of keys,
// each flag set at most once (nodes and num_servers both is a conflict), and
// every value of its flag's kind. It returns each flag's value as the
// command line would spell it.
func configValues(data []byte, keys map[string]configKey) (map[string]string, error) {
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("not UTF-8 text: a config file is TOML, like nodes = 5")
	}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names)
	out := map[string]string{}
	by := map[string]string{} // flag → the key that set it
	for _, name := range names {
		k, ok := keys[name]
		if !ok {
			return nil, fmt.Errorf("unknown key %q", name)
		}
		if prev, dup := by[k.flag]; dup {
			return nil, fmt.Errorf("keys %q and %q both set --%s: keep one", prev, name, k.flag)
		}
		by[k.flag] = name
		v, err := configValue(raw[name], k.kind)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", name, err)
		}
		out[k.flag] = v
	}
	return out, nil
}

// configValue checks one value against its flag's kind.
func configValue(v any, kind flagKind) (string, error) {
	got := func() error {
		return fmt.Errorf("want %s, got %s %v", [...]string{"a string", "an integer", "a number", `a duration such as "2s"`, "true or false"}[kind], tomlType(v), v)
	}
	switch kind {
	case kindInt:
		if n, ok := v.(int64); ok {
			return fmt.Sprint(n), nil
		}
	case kindFloat:
		switch n := v.(type) {
		case int64:
			return fmt.Sprint(n), nil
		case float64:
			return fmt.Sprint(n), nil
		}
	case kindDuration:
		if s, ok := v.(string); ok {
			if _, err := time.ParseDuration(s); err != nil {
				return "", got()
			}
			return s, nil
		}
	case kindBool:
		if b, ok := v.(bool); ok {
			return fmt.Sprint(b), nil
		}
	default:
		if s, ok := v.(string); ok {
			return s, nil
		}
	}
	return "", got()
}

// tomlType names the TOML type of a decoded value.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("a %T", v)
}
