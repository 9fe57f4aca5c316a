package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// maxJSONDepth bounds how deeply nested a request body may be.
const maxJSONDepth = 32

// checkDuplicateKeys returns an error if any JSON object in body has the
// same key twice. encoding/json keeps the last of them silently, so
// {"value":50,"value":40} would set 40: the API refuses such bodies (400)
// instead of guessing which the client meant. Malformed JSON is left to the
// decoder, which reports it better.
func checkDuplicateKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	err := checkValue(dec, "", 0)
	if errors.Is(err, errDuplicateKey) {
		return err
	}
	return nil
}

var errDuplicateKey = errors.New("duplicate key")

// checkValue walks one JSON value at path, depth levels down.
func checkValue(dec *json.Decoder, path string, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("nested deeper than %d", maxJSONDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil
		}
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			if seen[key] {
				return fmt.Errorf("%w %q in %s", errDuplicateKey, key, orTop(path))
			}
			seen[key] = true
			if err := checkValue(dec, path+"."+key, depth+1); err != nil {
				return err
			}
		}
		_, err = dec.Token() // }
		return err
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := checkValue(dec, fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ]
		return err
	}
	return nil
}

func orTop(path string) string {
	if path == "" {
		return "the body"
	}
	return path[1:]
}
