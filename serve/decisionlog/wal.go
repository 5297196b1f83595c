package decisionlog

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// A WAL segment is a sequence of records, each
//
//	uint32 n (little endian)  uint32 crc32c(body)  body: 1 kind byte + n-1 bytes of JSON
//
// kind 'D' is a DecisionRow, 'R' a RewardRow. A crash can leave a torn last record; a
// reader stops at the first record that is short or fails its checksum.
const (
	kindDecision = 'D'
	kindReward   = 'R'
	// maxRecord bounds one record (a decision row is at most a few MiB: the server caps
	// request bodies).
	maxRecord = 256 << 20
	walDir    = "wal"
	walExt    = ".wal"
	lockExt   = ".lock"
	timeFmt   = "20060102T150405.000000000Z"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// appendRecord appends one framed record to dst.
func appendRecord(dst []byte, kind byte, payload []byte) []byte {
	n := len(payload) + 1
	var hdr [8]byte
	binary.LittleEndian.PutUint32(hdr[0:4], uint32(n))
	crc := crc32.Update(0, crcTable, []byte{kind})
	crc = crc32.Update(crc, crcTable, payload)
	binary.LittleEndian.PutUint32(hdr[4:8], crc)
	dst = append(dst, hdr[:]...)
	dst = append(dst, kind)
	return append(dst, payload...)
}

func encodeRecord(dst []byte, v any) ([]byte, error) {
	var kind byte
	switch v.(type) {
	case *DecisionRow:
		kind = kindDecision
	case *RewardRow:
		kind = kindReward
	default:
		return dst, fmt.Errorf("decisionlog: cannot log a %T", v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst, fmt.Errorf("decisionlog: encode: %w", err)
	}
	return appendRecord(dst, kind, b), nil
}

// Segment is what a WAL segment holds.
type Segment struct {
	Decisions []DecisionRow
	Rewards   []RewardRow
	// TornBytes counts the bytes after the last good record (a torn tail after a crash).
	TornBytes int64
}

// ReadSegment reads the records of a WAL segment, stopping at a torn or corrupt tail.
func ReadSegment(path string) (Segment, error) {
	f, err := os.Open(path)
	if err != nil {
		return Segment{}, fmt.Errorf("decisionlog: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Segment{}, fmt.Errorf("decisionlog: %w", err)
	}
	var seg Segment
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	var hdr [8]byte
	var body []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			break
		}
		n := binary.LittleEndian.Uint32(hdr[0:4])
		if n == 0 || n > maxRecord || int64(n) > st.Size()-off-8 {
			break
		}
		if cap(body) < int(n) {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			break
		}
		if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(hdr[4:8]) {
			break
		}
		switch body[0] {
		case kindDecision:
			var d DecisionRow
			if err := json.Unmarshal(body[1:], &d); err != nil {
				return seg, fmt.Errorf("decisionlog: %s at byte %d: %w", path, off, err)
			}
			seg.Decisions = append(seg.Decisions, d)
		case kindReward:
			var rw RewardRow
			if err := json.Unmarshal(body[1:], &rw); err != nil {
				return seg, fmt.Errorf("decisionlog: %s at byte %d: %w", path, off, err)
			}
			seg.Rewards = append(seg.Rewards, rw)
		default:
			return seg, fmt.Errorf("decisionlog: %s at byte %d: unknown record kind %q", path, off, body[0])
		}
		off += 8 + int64(n)
	}
	seg.TornBytes = st.Size() - off
	return seg, nil
}

// segmentName returns the name (without extension) of a replica's seq-th segment.
func segmentName(start string, replica string, seq int64) string {
	return fmt.Sprintf("%s-%s-%06d", start, replica, seq)
}

// segmentReplica returns the replica that wrote a segment (a segment name, or the
// Parquet file name cut from it: "part-<segment>.parquet").
func segmentReplica(name string) (string, bool) {
	name = strings.TrimSuffix(strings.TrimPrefix(name, "part-"), ".parquet")
	name = strings.TrimSuffix(name, walExt)
	if len(name) < len(timeFmt)+3 || name[len(timeFmt)] != '-' {
		return "", false
	}
	rest := name[len(timeFmt)+1:]
	i := strings.LastIndexByte(rest, '-')
	if i <= 0 {
		return "", false
	}
	return rest[:i], true
}

// Segments lists the WAL segments under a log directory, oldest first per replica.
func Segments(dir string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(dir, walDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("decisionlog: %w", err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), walExt) {
			out = append(out, filepath.Join(dir, walDir, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// ReadWAL reads every record of the WAL segments under a log directory (rows not yet cut
// into Parquet files: a live writer's, or a crashed one's before recovery).
func ReadWAL(dir string) (Segment, error) {
	segs, err := Segments(dir)
	if err != nil {
		return Segment{}, err
	}
	var all Segment
	for _, p := range segs {
		s, err := ReadSegment(p)
		if err != nil {
			return all, err
		}
		all.Decisions = append(all.Decisions, s.Decisions...)
		all.Rewards = append(all.Rewards, s.Rewards...)
		all.TornBytes += s.TornBytes
	}
	return all, nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// sanitizeName makes s usable in a file name.
func sanitizeName(s string) string {
	s = unsafeName.ReplaceAllString(s, "_")
	if s == "" || s[0] == '.' {
		s = "_" + s
	}
	return s
}
