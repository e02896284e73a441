package conditions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// DecodeImageJSON reads an image fixture: a JSON object with the fields
// of Image (JSON names), where "reference" may stand for registry,
// repository, tag and digest. Unknown fields are errors. name is used
// in error messages, which carry name:line:col. The image is normalized.
func DecodeImageJSON(name string, data []byte) (*Image, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var img Image
	if err := dec.Decode(&img); err != nil {
		return nil, jsonError(name, data, dec, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s:%s: unexpected content after the image object", name, lineCol(data, dec.InputOffset()))
	}
	if err := img.Normalize(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &img, nil
}

func jsonError(name string, data []byte, dec *json.Decoder, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("%s:%s: invalid JSON: %v", name, lineCol(data, syn.Offset), syn)
	case errors.As(err, &typ):
		return fmt.Errorf("%s:%s: field %q: expected %s, got JSON %s", name, lineCol(data, valueStart(data, typ.Offset)), typ.Field, typ.Type, typ.Value)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%s: empty input: expected a JSON image object", name)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s:%s: unexpected end of JSON", name, lineCol(data, int64(len(data))))
	}
	// Unknown fields and time parse errors carry no offset of their own;
	// the decoder stopped just after the offending value.
	return fmt.Errorf("%s:%s: %v", name, lineCol(data, dec.InputOffset()), err)
}

// lineCol renders a byte offset as "line:col" (1-based, col in bytes).
func lineCol(data []byte, off int64) string {
	off = max(0, min(off, int64(len(data))))
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := off - int64(bytes.LastIndexByte(data[:off], '\n'))
	return fmt.Sprintf("%d:%d", line, col)
}

// valueStart moves an offset that stands just after a JSON string or
// literal back to where that value starts, so errors point at it.
func valueStart(data []byte, off int64) int64 {
	i := min(off, int64(len(data))) - 1
	for i >= 0 && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i--
	}
	if i < 0 {
		return off
	}
	if data[i] == '"' {
		for j := i - 1; j >= 0; j-- {
			if data[j] == '"' && (j == 0 || data[j-1] != '\\') {
				return j
			}
		}
		return off
	}
	for i > 0 && !bytes.ContainsRune([]byte(" \t\r\n:,[{"), rune(data[i-1])) {
		i--
	}
	return i
}
