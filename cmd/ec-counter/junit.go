package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ec-counter/ec-counter/harness"
)

// maxJUnitFile bounds one file junit-merge reads.
const maxJUnitFile = 256 << 20

func junitMergeCommand() *cli.Command {
	return &cli.Command{
		Name:      "junit-merge",
		Usage:     "merge JUnit XML files (the shards of a campaign, --shard K/M) into one",
		ArgsUsage: "FILE...",
		Description: "Writes one JUnit XML document holding every test suite of the FILEs, in order, to --out\n" +
			"(standard output by default). Exit code: 0, or 254 if a FILE cannot be read or is not JUnit XML.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write the merged XML to `FILE` instead of standard output"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() == 0 {
				return usageError(errors.New("junit-merge takes at least one FILE"))
			}
			var docs []harness.JUnitDoc
			for _, name := range c.Args().Slice() {
				b, err := readBounded(name, maxJUnitFile)
				if err != nil {
					return usageError(err)
				}
				docs = append(docs, harness.JUnitDoc{Name: name, Data: b})
			}
			var buf bytes.Buffer
			if err := harness.MergeJUnit(&buf, docs); err != nil {
				return usageError(err)
			}
			if path := c.String("out"); path != "" {
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					return harnessFailure(fmt.Errorf("--out: %w", err))
				}
				return nil
			}
			if _, err := os.Stdout.Write(buf.Bytes()); err != nil {
				return harnessFailure(err)
			}
			return nil
		},
	}
}

// readBounded reads a file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return b, nil
}
