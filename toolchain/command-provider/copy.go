// command:remote:CopyToRemote for the pulumi-resource-command stand-in, as upstream documents it (v1.2.1,
// provider/pkg/provider/remote/copy.go and copyController.go):
//   - inputs: connection (secret), source (a path-based FileAsset or FileArchive, or a text StringAsset),
//     remotePath, triggers; outputs are the inputs;
//   - the copy goes over SFTP (github.com/pkg/sftp). The last element of remotePath is created when missing;
//     a missing parent is an error. A file onto an existing directory lands inside it; a directory whose
//     path has no trailing slash is copied as remotePath/<its name>, with one it is copied into remotePath;
//     existing files are overwritten, nothing else on the remote is removed;
//   - a triggers change replaces; a change of source (its hash) or remotePath copies again (an update);
//   - delete does nothing: the copied files stay on the remote host.
package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pkg/sftp"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

const copyToRemote = "command:remote:CopyToRemote"

// copySource is what a CopyToRemote copies: a local path (file or directory) or a text.
type copySource struct {
	path, text string
	isText     bool
	hash       string
}

func parseSource(props resource.PropertyMap) (copySource, error) {
	v, ok := props["source"]
	if !ok {
		return copySource{}, fmt.Errorf("source is required")
	}
	v = unwrap(v)
	switch {
	case v.IsAsset():
		a := v.AssetValue()
		if a.IsText() {
			return copySource{text: a.Text, isText: true, hash: a.Hash}, nil
		}
		if a.IsPath() {
			return copySource{path: a.Path, hash: a.Hash}, nil
		}
		return copySource{}, fmt.Errorf("source: asset must be a path-based file asset or a text asset")
	case v.IsArchive():
		a := v.ArchiveValue()
		if a.IsPath() {
			return copySource{path: a.Path, hash: a.Hash}, nil
		}
		return copySource{}, fmt.Errorf("source: archive must be a path to a file or directory")
	}
	return copySource{}, fmt.Errorf("source must be an asset or an archive")
}

func checkCopy(props resource.PropertyMap) []string {
	var problems []string
	if _, err := parseSource(props); err != nil {
		problems = append(problems, err.Error())
	}
	if str(props, "remotePath") == "" {
		problems = append(problems, "remotePath is required")
	}
	return problems
}

// runCopy dials the connection and copies the source to remotePath over SFTP.
func runCopy(ctx context.Context, props resource.PropertyMap) error {
	src, err := parseSource(props)
	if err != nil {
		return err
	}
	c, err := parseConn(props["connection"])
	if err != nil {
		return err
	}
	client, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer client.Close()
	sc, err := sftp.NewClient(client)
	if err != nil {
		return fmt.Errorf("sftp on %s: %w", c.address(), err)
	}
	defer sc.Close()
	dest := str(props, "remotePath")
	if src.isText {
		return copyText(sc, src.text, dest)
	}
	return sftpCopy(sc, src.path, dest)
}

func remoteStat(sc *sftp.Client, path string) (fs.FileInfo, error) {
	info, err := sc.Stat(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cannot stat remote path %s: %w", path, err)
	}
	if err != nil {
		return nil, nil
	}
	return info, nil
}

func copyText(sc *sftp.Client, text, dest string) error {
	st, err := remoteStat(sc, dest)
	if err != nil {
		return err
	}
	if st != nil && st.IsDir() {
		return fmt.Errorf("remote path %s is a directory; when using a text asset, remotePath must be a file path", dest)
	}
	f, err := sc.Create(dest)
	if err != nil {
		return fmt.Errorf("cannot create remote file %s: %w", dest, err)
	}
	defer f.Close()
	if _, err := f.Write([]byte(text)); err != nil {
		return fmt.Errorf("cannot write remote file %s: %w", dest, err)
	}
	return nil
}

func sftpCopy(sc *sftp.Client, source, dest string) error {
	info, err := os.Stat(source)
	if err != nil {
		return err
	}
	st, err := remoteStat(sc, dest)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		if st != nil && st.IsDir() {
			dest = filepath.Join(dest, filepath.Base(source))
		}
		return copyFile(sc, source, dest)
	}
	if st == nil {
		if err := sc.Mkdir(dest); err != nil {
			return fmt.Errorf("cannot create remote directory %s: %w", dest, err)
		}
	} else if !st.IsDir() {
		return fmt.Errorf("remote path %s exists but is not a directory", dest)
	}
	if !strings.HasSuffix(source, "/") {
		dest = filepath.Join(dest, filepath.Base(source))
	}
	return fs.WalkDir(os.DirFS(source), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dest, rel)
		if !d.IsDir() {
			return copyFile(sc, filepath.Join(source, rel), target)
		}
		st, err := remoteStat(sc, target)
		if err != nil {
			return err
		}
		if st == nil {
			if err := sc.Mkdir(target); err != nil {
				return fmt.Errorf("cannot create remote directory %s: %w", target, err)
			}
		} else if !st.IsDir() {
			return fmt.Errorf("remote path %s exists but is not a directory", target)
		}
		return nil
	})
}

func copyFile(sc *sftp.Client, source, dest string) error {
	local, err := os.Open(source)
	if err != nil {
		return err
	}
	defer local.Close()
	remote, err := sc.Create(dest)
	if err != nil {
		return fmt.Errorf("cannot create remote file %s: %w", dest, err)
	}
	defer remote.Close()
	if _, err := remote.ReadFrom(local); err != nil {
		return fmt.Errorf("cannot copy %s to remote path %s: %w", source, dest, err)
	}
	return nil
}
