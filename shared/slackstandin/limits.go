package slackstandin

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Block Kit limits, as Slack's Block Kit reference states them
// (docs.slack.dev/reference/block-kit/blocks/…-block and
// …/block-elements/button-element). Slack refuses a message that breaks one
// with invalid_blocks, and a view with invalid_arguments, naming every
// problem in response_metadata.messages as
// "[ERROR] <what> [json-pointer:<where>]". The stand-in checks the limits
// apps run into with dynamic content (long texts, many fields or buttons,
// ids) and the identifiers Slack requires to be unique; it does not
// re-implement every element's schema.
const (
	// maxMessageText: "Provide no more than 40,000 characters"
	// (chat.postMessage). chat.update's msg_too_long entry mentions 4,000,
	// which contradicts the 40,000 Slack truncates at; the stand-in uses
	// one limit for every message.
	maxMessageText = 40000

	maxSectionText      = 3000 // section text
	maxSectionFields    = 10   // section fields
	maxSectionFieldText = 2000 // each section field
	maxHeaderText       = 150  // header text
	maxContextElements  = 10   // context elements
	maxActionsElements  = 25   // actions elements
	maxButtonText       = 75   // button text
	maxButtonValue      = 2000 // button value
	maxButtonURL        = 3000 // button url
	maxID               = 255  // block_id, action_id
)

// surface is where blocks are shown: messages take up to 50 blocks, modals
// (and Home tabs) up to 100.
type surface struct {
	maxBlocks int
	pointer   string // JSON pointer of the blocks array in the request
}

var (
	messageSurface = surface{maxBlocks: 50, pointer: "/blocks"}
	modalSurface   = surface{maxBlocks: 100, pointer: "/view/blocks"}
)

// blockTypes are the layout blocks of Slack's Block Kit reference. Any
// other type is refused: Slack answers invalid_blocks for a block it does
// not know.
var blockTypes = map[string]bool{
	"actions": true, "context": true, "context_actions": true, "divider": true,
	"file": true, "header": true, "image": true, "input": true, "markdown": true,
	"rich_text": true, "section": true, "table": true, "video": true,
}

// kitBlock holds the fields of a layout block the limits concern; text is
// kept raw because its shape depends on the type (a markdown block's is a
// string).
type kitBlock struct {
	Type      *string           `json:"type"`
	BlockID   *string           `json:"block_id"`
	Text      json.RawMessage   `json:"text"`
	Fields    []json.RawMessage `json:"fields"`
	Elements  []json.RawMessage `json:"elements"`
	Accessory json.RawMessage   `json:"accessory"`
	Element   json.RawMessage   `json:"element"`
}

type kitText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type kitElement struct {
	Type     string          `json:"type"`
	ActionID *string         `json:"action_id"`
	Text     json.RawMessage `json:"text"`
	Value    *string         `json:"value"`
	URL      *string         `json:"url"`
}

// blockCheck collects the problems found in one surface.
type blockCheck struct {
	msgs     []string
	blockIDs map[string]bool
}

func (c *blockCheck) fail(pointer, format string, args ...any) {
	c.msgs = append(c.msgs, "[ERROR] "+fmt.Sprintf(format, args...)+" [json-pointer:"+pointer+"]")
}

// checkBlocks returns Slack's messages for everything in raw (a blocks
// array) that breaks the limits of surface sf; none when it is valid.
func checkBlocks(raw json.RawMessage, sf surface) []string {
	var blocks []json.RawMessage
	c := &blockCheck{blockIDs: map[string]bool{}}
	if err := json.Unmarshal(raw, &blocks); err != nil {
		c.fail(sf.pointer, "must be an array")
		return c.msgs
	}
	if len(blocks) > sf.maxBlocks {
		c.fail(sf.pointer, "no more than %d items allowed", sf.maxBlocks)
	}
	for i, b := range blocks {
		c.block(sf.pointer+"/"+strconv.Itoa(i), b)
	}
	return c.msgs
}

func (c *blockCheck) block(ptr string, raw json.RawMessage) {
	var b kitBlock
	if json.Unmarshal(raw, &b) != nil || b.Type == nil || !blockTypes[*b.Type] {
		c.fail(ptr, "failed to match all allowed schemas")
		return
	}
	if b.BlockID != nil {
		// "block_id should be unique for each message and each iteration
		// of a message" (every block's reference).
		switch id := *b.BlockID; {
		case utf8.RuneCountInString(id) > maxID:
			c.fail(ptr+"/block_id", "must be less than %d characters", maxID+1)
		case c.blockIDs[id]:
			c.fail(ptr+"/block_id", "must be unique within the message: %q is used twice", id)
		}
		c.blockIDs[*b.BlockID] = true
	}
	actionIDs := map[string]bool{}
	switch *b.Type {
	case "section":
		if len(b.Text) > 0 {
			c.text(ptr+"/text", b.Text, maxSectionText)
		}
		if len(b.Fields) > maxSectionFields {
			c.fail(ptr+"/fields", "no more than %d items allowed", maxSectionFields)
		}
		for j, f := range b.Fields {
			c.text(ptr+"/fields/"+strconv.Itoa(j), f, maxSectionFieldText)
		}
		if len(b.Accessory) > 0 {
			c.element(ptr+"/accessory", b.Accessory, actionIDs)
		}
	case "header":
		c.text(ptr+"/text", b.Text, maxHeaderText)
	case "context":
		if len(b.Elements) > maxContextElements {
			c.fail(ptr+"/elements", "no more than %d items allowed", maxContextElements)
		}
	case "actions":
		if len(b.Elements) > maxActionsElements {
			c.fail(ptr+"/elements", "no more than %d items allowed", maxActionsElements)
		}
		for j, e := range b.Elements {
			c.element(ptr+"/elements/"+strconv.Itoa(j), e, actionIDs)
		}
	case "input":
		if len(b.Element) > 0 {
			c.element(ptr+"/element", b.Element, actionIDs)
		}
	}
}

// text checks a text object's length (in characters, as Slack counts).
func (c *blockCheck) text(ptr string, raw json.RawMessage, max int) {
	var t kitText
	if json.Unmarshal(raw, &t) != nil {
		c.fail(ptr, "must be a text object")
		return
	}
	if utf8.RuneCountInString(t.Text) > max {
		c.fail(ptr+"/text", "must be less than %d characters", max+1)
	}
}

// element checks an interactive element. An action_id "should be unique
// among all other action_ids in the containing block" (the button
// element's reference): the same action_id in two blocks is allowed, twice
// in one block is not.
func (c *blockCheck) element(ptr string, raw json.RawMessage, actionIDs map[string]bool) {
	var e kitElement
	if json.Unmarshal(raw, &e) != nil {
		c.fail(ptr, "failed to match all allowed schemas")
		return
	}
	if e.ActionID != nil {
		switch id := *e.ActionID; {
		case utf8.RuneCountInString(id) > maxID:
			c.fail(ptr+"/action_id", "must be less than %d characters", maxID+1)
		case actionIDs[id]:
			c.fail(ptr+"/action_id", "must be unique within the block: %q is used twice", id)
		}
		actionIDs[*e.ActionID] = true
	}
	if e.Type != "button" {
		return
	}
	c.text(ptr+"/text", e.Text, maxButtonText)
	if e.Value != nil && utf8.RuneCountInString(*e.Value) > maxButtonValue {
		c.fail(ptr+"/value", "must be less than %d characters", maxButtonValue+1)
	}
	if e.URL != nil && utf8.RuneCountInString(*e.URL) > maxButtonURL {
		c.fail(ptr+"/url", "must be less than %d characters", maxButtonURL+1)
	}
}
