package main

import (
	"strings"
	"testing"
)

func testKeys() map[string]configKey { return configKeys(testCommand().Flags) }

func TestConfigValues(t *testing.T) {
	for _, tc := range []struct {
		in, bad string // bad: a substring of the error, "" for none
		want    map[string]string
	}{
		{in: "nodes = 5\nrate = 20.5\nrequest_timeout = \"2s\"\nnemesis = \"kill\"\n",
			want: map[string]string{"nodes": "5", "rate": "20.5", "request-timeout": "2s", "nemesis": "kill"}},
		{in: "num_servers = 4\nnum_clients = 2\n", want: map[string]string{"nodes": "4", "clients": "2"}},
		{in: "rate = 20\n", want: map[string]string{"rate": "20"}},
		{in: "nodes = 1\nnum_servers = 2\n", bad: `both set --nodes`},
		{in: "help = true\n", bad: `unknown key "help"`},
		{in: "config = \"x\"\n", bad: `unknown key "config"`},
		{in: "nodez = 3\n", bad: `unknown key "nodez"`},
		{in: "nodes = \"five\"\n", bad: `want an integer, got a string five`},
		{in: "nodes = 2.5\n", bad: `want an integer, got a float 2.5`},
		{in: "rate = \"fast\"\n", bad: `want a number, got a string fast`},
		{in: "request_timeout = 5\n", bad: `want a duration such as "2s", got an integer 5`},
		{in: "request_timeout = \"5 seconds\"\n", bad: `want a duration`},
		{in: "name = [1, 2]\n", bad: `want a string, got an array`},
		{in: "\xff\xfe", bad: "not UTF-8"},
		{in: "nodes = \n", bad: "line 1"},
	} {
		got, err := configValues([]byte(tc.in), testKeys())
		if tc.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("%q: error %v, want one with %q", tc.in, err, tc.bad)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%q: %s = %q, want %q (all: %v)", tc.in, k, got[k], v, got)
			}
		}
	}
}

// FuzzConfigValues: any file gives settings or an error, never a panic,
// and every setting names a flag of the command.
func FuzzConfigValues(f *testing.F) {
	for _, s := range []string{"nodes = 5\nrate = 20.0\n", "num_servers = 2\nnodes = 1\n", "x = [1, {a = 2}]\n", "request_timeout = \"2s\"\n"} {
		f.Add([]byte(s))
	}
	keys := testKeys()
	flags := map[string]bool{}
	for _, k := range keys {
		flags[k.flag] = true
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := configValues(data, keys)
		if err != nil {
			return
		}
		for flag := range got {
			if !flags[flag] {
				t.Fatalf("setting of an unknown flag %q", flag)
			}
		}
	})
}
