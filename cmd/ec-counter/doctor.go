package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/ec-counter/ec-counter/crashfs"
	"github.com/ec-counter/ec-counter/internal/atomicfile"
	"github.com/ec-counter/ec-counter/lab"
)

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "say what this machine can do: the lab (user and network namespaces, nftables, NFQUEUE), each fault kind on each network, chromium",
		Description: "Builds a two-host lab and tries each kernel fault on real traffic, then prints which fault kinds\n" +
			"each network can inject here and how to enable what is missing. Exits 0 if the lab works, 1 if not.",
		Flags: []cli.Flag{hostsFlag("check the SSH hosts of `FILE` instead (docs/ssh-hosts.md \"Nodes on SSH hosts\"): SSH, root or sudo, nftables, NFQUEUE, clock, disk, system; exits 1 if one fails")},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return usageError(fmt.Errorf("doctor takes no arguments, got %q", c.Args().Slice()))
			}
			if c.String("hosts") != "" {
				return doctorHosts(c)
			}
			if !lab.Inside() {
				printHostFacts()
				code, err := lab.Reexec()
				if err == nil {
					return exitWith(code)
				}
				fmt.Printf("private namespaces          NO: %v\n", err)
				printFaultTable(false, err.Error())
				printChromium()
				return cli.Exit("", exitInvalid)
			}
			fmt.Printf("private namespaces          yes (this check runs inside them)\n")
			if err := lab.Init(); err != nil {
				fmt.Printf("lab router                  NO: %v\n", err)
				printFaultTable(false, err.Error())
				printChromium()
				return cli.Exit("", exitInvalid)
			}
			checks, err := lab.Probe(c.Context)
			crashErr := probeCrashFS()
			crashCheck := lab.Check{Name: "power-loss file system (FUSE mount, fsync, crash)", OK: crashErr == nil, Detail: "a crash lost the unsynced write and kept the synced one"}
			if crashErr != nil {
				crashCheck.Detail = crashErr.Error()
			}
			checks = append(checks, crashCheck)
			for _, ch := range checks {
				mark := "yes"
				if !ch.OK {
					mark = "NO"
				}
				fmt.Printf("  %-55s %s: %s\n", ch.Name, mark, ch.Detail)
			}
			reason := ""
			if err != nil {
				reason = err.Error()
			}
			printFaultTable(err == nil, reason)
			if crashErr != nil {
				fmt.Printf("crash: NOT available (%v); /dev/fuse must exist and be usable\n", crashErr)
			} else {
				fmt.Println("crash: works (--nemesis crash, --disk lazy or torn; not with --net loopback)")
			}
			printChromium()
			if err != nil || crashErr != nil {
				return cli.Exit("", exitInvalid)
			}
			return nil
		},
	}
}

// printHostFacts prints who runs the harness and the settings that decide
// whether an unprivileged user may create user namespaces.
func printHostFacts() {
	who := "root"
	if os.Geteuid() != 0 {
		who = fmt.Sprintf("uid %d, not root: the lab runs in a user namespace of its own", os.Geteuid())
	}
	fmt.Printf("user                        %s\n", who)
	for _, s := range []string{
		"/proc/sys/kernel/unprivileged_userns_clone",
		"/proc/sys/user/max_user_namespaces",
		"/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
	} {
		if b, err := os.ReadFile(s); err == nil {
			name := strings.ReplaceAll(strings.TrimPrefix(s, "/proc/sys/"), "/", ".")
			fmt.Printf("%-27s %s\n", name, strings.TrimSpace(string(b)))
		}
	}
}

// printFaultTable prints which fault kinds each network injects here.
func printFaultTable(labOK bool, why string) {
	labCell := "yes: kernel rules on the lab's router, for any node binary"
	if !labOK {
		labCell = "no: the lab does not work here (" + why + ")"
	}
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FAULT\t--net loopback\t--net lab")
	for _, kind := range []string{"partition", "delay", "loss"} {
		fmt.Fprintf(tw, "%s\tonly nodes with the admin API (docs/node.md \"Admin API (fault injection)\")\t%s\n", kind, labCell)
	}
	procCell := "yes"
	if !labOK {
		procCell = "no (the lab does not work here)"
	}
	for _, kind := range []string{"kill", "pause"} {
		fmt.Fprintf(tw, "%s\tyes: signals\t%s\n", kind, procCell)
	}
	tw.Flush()
	fmt.Println()
	if labOK {
		fmt.Println("lab: works; `ec-counter test` uses it by default (--net auto)")
	} else {
		fmt.Println("lab: NOT available; `ec-counter test` falls back to --net loopback, where partitions, delay and loss")
		fmt.Println("     need nodes with the admin API. To enable the lab, see the section \"When the lab is not available\" of docs/networks.md.")
	}
}

// probeCrashFS mounts a power-loss file system in a temporary directory,
// writes one file with an fsync and one without, crashes it, and checks
// that exactly the synced one survived.
func probeCrashFS() (err error) {
	dir, err := os.MkdirTemp("", "ec-counter-doctor-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fs, err := crashfs.Mount(filepath.Join(dir, "disk"), filepath.Join(dir, "mnt"), crashfs.Options{})
	if err != nil {
		return err
	}
	defer func() {
		if uerr := fs.Unmount(); err == nil {
			err = uerr
		}
	}()
	mnt := fs.Mountpoint()
	if err := atomicfile.WriteBytes(filepath.Join(mnt, "synced"), 0o644, []byte("kept\n")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(mnt, "unsynced"), []byte("lost\n"), 0o644); err != nil {
		return err
	}
	fs.Crash()
	if b, err := os.ReadFile(filepath.Join(mnt, "synced")); err != nil || string(b) != "kept\n" {
		return fmt.Errorf("after a crash the synced file reads %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "unsynced")); !os.IsNotExist(err) {
		return fmt.Errorf("after a crash the unsynced file is still there (%v)", err)
	}
	return nil
}

// printChromium says whether the report tests can run a browser.
func printChromium() {
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			fmt.Printf("chromium: %s (the report tests use it)\n", p)
			return
		}
	}
	fmt.Println("chromium: not found; the report tests skip their browser checks (Debian: apt-get install chromium)")
}
