package lab

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ProcMatches reports whether /proc shows this process's own PID
// namespace, so that the process IDs it lists can be signalled.
func ProcMatches() bool {
	self, err := os.Readlink("/proc/self")
	return err == nil && self == strconv.Itoa(os.Getpid())
}

// LiveInGroup lists the processes of process group pgid that still have a
// thread that is not a zombie: a process whose main thread has exited can
// keep one waiting, on a FUSE request for instance. It returns nil when
// /proc shows another PID namespace (see ProcMatches).
func LiveInGroup(pgid int) []int {
	if !ProcMatches() {
		return nil
	}
	return liveProcesses(func(_, group int) bool { return group == pgid })
}

// liveProcesses lists the processes in /proc that keep picks (by pid and
// process group) and that have a thread that is not a zombie.
func liveProcesses(keep func(pid, pgid int) bool) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, dir := range dirs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil {
			continue
		}
		f := statFields(filepath.Join(dir, "stat"))
		if len(f) < 3 {
			continue
		}
		group, err := strconv.Atoi(f[2])
		if err != nil || !keep(pid, group) {
			continue
		}
		tasks, _ := filepath.Glob(filepath.Join(dir, "task", "[0-9]*", "stat"))
		for _, task := range tasks {
			if f := statFields(task); len(f) > 0 && f[0] != "Z" && f[0] != "X" {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// statFields returns the fields of a /proc stat file after the command
// name (which may hold spaces and parentheses): state, ppid, pgrp, ...
func statFields(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	i := bytes.LastIndex(b, []byte(") "))
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+2:]))
}
