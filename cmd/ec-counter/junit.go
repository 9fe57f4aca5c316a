package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ec-counter/ec-counter/harness"
	"github.com/ec-counter/ec-counter/internal/atomicfile"
	"github.com/ec-counter/ec-counter/internal/boundedfile"
)

// maxJUnitFile bounds one file junit-merge reads.
const maxJUnitFile = 256 << 20

func junitMergeCommand() *cli.Command {
	return &cli.Command{
		Name:      "junit-merge",
		Usage:     "merge JUnit XML files (the shards of a campaign, --shard K/M) into one",
		ArgsUsage: "FILE...",
		Description: "Writes one JUnit XML document holding every test suite of the FILEs, in order and whole, to --out\n" +
			"(standard output by default), reading them as it writes. Each FILE must hold exactly one JUnit document\n" +
			"(root <testsuites> or <testsuite>), of at most 256 MiB. Exit code: 0, or 254 if a FILE cannot be read or\n" +
			"is not one JUnit document; then --out is left as it was, and standard output holds an unfinished document.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write the merged XML to `FILE` instead of standard output"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() == 0 {
				return usageError(errors.New("junit-merge takes at least one FILE"))
			}
			files := c.Args().Slice()
			return writeOut(c.String("out"), func(w io.Writer) error { return mergeJUnitFiles(w, files) })
		},
	}
}

// outputError is a failure to write the command's output: the harness's
// failure (255), where every other error of junit-merge is its input's
// (254).
type outputError struct{ err error }

func (e *outputError) Error() string { return e.err.Error() }
func (e *outputError) Unwrap() error { return e.err }

// errRecorder passes writes on to w and remembers whether one failed.
type errRecorder struct {
	w      io.Writer
	failed bool
}

func (r *errRecorder) Write(p []byte) (int, error) {
	n, err := r.w.Write(p)
	r.failed = r.failed || err != nil
	return n, err
}

// writeOut runs write on path, or on standard output when path is "",
// and maps its error to an exit code. A regular (or new) file is replaced
// only once write succeeded; anything else (a symlink such as /dev/stdout,
// a device, a FIFO) is written in place, never replaced.
func writeOut(path string, write func(io.Writer) error) error {
	recorded := func(w io.Writer) error {
		r := &errRecorder{w: w}
		err := write(r)
		if err != nil && r.failed {
			return &outputError{err}
		}
		return err
	}
	var err error
	switch st, serr := os.Lstat(path); {
	case path == "":
		bw := bufio.NewWriterSize(os.Stdout, 64<<10)
		err = recorded(bw)
		if ferr := bw.Flush(); err == nil && ferr != nil {
			err = &outputError{ferr}
		}
	case serr == nil && !st.Mode().IsRegular():
		var f *os.File
		if f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644); err != nil {
			return harnessFailure(fmt.Errorf("--out: %w", err))
		}
		err = recorded(f)
		if cerr := f.Close(); err == nil && cerr != nil {
			err = &outputError{cerr}
		}
	default:
		var inErr error // the input's error, which atomicfile wraps as a failed write
		err = atomicfile.WriteFile(path, 0o644, func(w io.Writer) error {
			err := recorded(w)
			if _, out := err.(*outputError); err != nil && !out {
				inErr = err
			}
			return err
		})
		if inErr != nil {
			err = inErr
		} else if err != nil {
			err = &outputError{err}
		}
	}
	var oe *outputError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &oe) && path != "":
		return harnessFailure(fmt.Errorf("--out %s: %w", path, err))
	case errors.As(err, &oe):
		return harnessFailure(fmt.Errorf("standard output: %w", err))
	}
	return usageError(err)
}

// mergeJUnitFiles merges the JUnit files into w, one file open at a time,
// each read within maxJUnitFile bytes whatever it is (a device, a FIFO).
func mergeJUnitFiles(w io.Writer, files []string) error {
	m := harness.NewJUnitMerger(w)
	for _, name := range files {
		f, err := boundedfile.Open(name, maxJUnitFile)
		if err != nil {
			return err
		}
		err = m.Add(name, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return m.Close()
}
