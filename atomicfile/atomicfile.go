// Package atomicfile publishes files atomically and durably: a file is written under a
// hidden temporary name in its final directory, flushed to disk (fsync), closed, renamed
// over the final name, and the directory is flushed (fsync), so that a reader sees either
// the previous content or the complete new content, never a partial file, and a file
// whose Commit returned survives a crash of the process or of the machine.
//
// Temporary files are named ".<final name>-<random>.tmp"; IsTemp recognises them (a crash
// between Create and Commit leaves one behind: it is never a complete file).
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// File is a file being written under a temporary name. Write to it, then Commit to
// publish it under its final name, or Abort to discard it.
type File struct {
	*os.File
	path string
	perm os.FileMode
	done bool
}

// Create starts writing path: it creates the temporary file in path's directory (which
// must exist). perm is the mode of the published file.
func Create(path string, perm os.FileMode) (*File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+"-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("atomicfile: create %s: %w", path, err)
	}
	return &File{File: f, path: path, perm: perm}, nil
}

// Path returns the final path.
func (f *File) Path() string { return f.path }

// Commit publishes the file: chmod, fsync, close, rename over the final path, fsync the
// directory. After an error the temporary file is removed and the final path is untouched
// (unless only the directory fsync failed: then the file is in place but may not survive
// a machine crash).
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("atomicfile: %s: already committed or aborted", f.path)
	}
	f.done = true
	tmp := f.Name()
	err := f.Chmod(f.perm)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, f.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("atomicfile: publish %s: %w", f.path, err)
	}
	return SyncDir(filepath.Dir(f.path))
}

// Abort discards the temporary file. It is a no-op after Commit or Abort.
func (f *File) Abort() error {
	if f.done {
		return nil
	}
	f.done = true
	f.Close()
	if err := os.Remove(f.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("atomicfile: discard %s: %w", f.Name(), err)
	}
	return nil
}

// Write publishes path with the bytes that write writes (see File.Commit). When write
// fails nothing is published and its error is returned.
func Write(path string, perm os.FileMode, write func(w io.Writer) error) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}

// WriteFile publishes path with data (see File.Commit).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		if _, err := w.Write(data); err != nil {
			return fmt.Errorf("atomicfile: write %s: %w", path, err)
		}
		return nil
	})
}

// SyncDir flushes a directory's entries (a rename or a new file in it) to disk.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("atomicfile: sync directory %s: %w", dir, err)
	}
	return nil
}

// IsTemp reports whether a file name (a base name) is one of Create's temporary files.
func IsTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp")
}

// TempTarget returns the final base name of a temporary file name, and false when name
// is not one of Create's temporary files.
func TempTarget(name string) (string, bool) {
	if !IsTemp(name) {
		return "", false
	}
	s := strings.TrimSuffix(strings.TrimPrefix(name, "."), ".tmp")
	i := strings.LastIndexByte(s, '-')
	if i <= 0 {
		return "", false
	}
	return s[:i], true
}
