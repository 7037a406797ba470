package slackstandin

import (
	"bytes"
	"cmp"
	"encoding/json"
	"html/template"
	"strconv"
)

// Block Kit to HTML for the web page: blocks are read into view models
// here and drawn by the templates in web/blocks.tmpl (html/template, so
// every attribute and text is escaped by it); text objects come from
// mrkdwn.go and rich_text from richtext.go as already escaped HTML.
//
// Messages: section (text, fields, accessory), context, divider, header,
// actions (buttons, static selects), rich_text, image (its alt text: the
// page loads nothing from outside). Modals add input blocks drawn as a real
// form: static_select, radio_buttons, checkboxes, plain_text_input (with
// its max_length and min_length), and email/url/number inputs. Anything
// else is named, not dropped, so a gap shows.

// bkText is a Block Kit text object.
type bkText struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji *bool  `json:"emoji,omitempty"`
}

// html draws a text object: mrkdwn formatted, plain_text escaped with
// emoji unless it says emoji:false.
func (t *bkText) html(n names) template.HTML {
	if t == nil {
		return ""
	}
	if t.Type == "mrkdwn" {
		return renderMrkdwn(t.Text, n)
	}
	return renderPlain(t.Text, t.Emoji == nil || *t.Emoji)
}

func (t *bkText) plain() string {
	if t == nil {
		return ""
	}
	return t.Text
}

type bkOption struct {
	Text        bkText  `json:"text"`
	Value       string  `json:"value"`
	Description *bkText `json:"description,omitempty"`
}

type bkElement struct {
	Type           string          `json:"type"`
	Text           json.RawMessage `json:"text"` // an object on buttons, a string on context text
	ActionID       string          `json:"action_id"`
	Value          string          `json:"value"`
	Style          string          `json:"style"`
	URL            string          `json:"url"`
	AltText        string          `json:"alt_text"`
	Placeholder    *bkText         `json:"placeholder"`
	Options        []bkOption      `json:"options"`
	OptionGroups   []bkOptionGroup `json:"option_groups"`
	InitialOption  *bkOption       `json:"initial_option"`
	InitialOptions []bkOption      `json:"initial_options"`
	InitialValue   string          `json:"initial_value"`
	Multiline      bool            `json:"multiline"`
	MaxLength      int             `json:"max_length"`
	MinLength      int             `json:"min_length"`
	Emoji          *bool           `json:"emoji"`
}

type bkOptionGroup struct {
	Label   bkText     `json:"label"`
	Options []bkOption `json:"options"`
}

// allOptions flattens option groups.
func (e bkElement) allOptions() []bkOption {
	out := append([]bkOption(nil), e.Options...)
	for _, g := range e.OptionGroups {
		out = append(out, g.Options...)
	}
	return out
}

// textObject reads Text as a text object (buttons) or, on a context
// element, the element itself as one.
func (e bkElement) textObject() *bkText {
	var t bkText
	if json.Unmarshal(e.Text, &t) == nil && t.Type != "" {
		return &t
	}
	var s string
	if json.Unmarshal(e.Text, &s) == nil {
		return &bkText{Type: e.Type, Text: s, Emoji: e.Emoji}
	}
	return nil
}

type bkBlock struct {
	Type      string            `json:"type"`
	BlockID   string            `json:"block_id"`
	Text      *bkText           `json:"text"`
	Fields    []bkText          `json:"fields"`
	Accessory json.RawMessage   `json:"accessory"`
	Elements  []json.RawMessage `json:"elements"`
	Label     *bkText           `json:"label"`
	Hint      *bkText           `json:"hint"`
	Element   json.RawMessage   `json:"element"`
	Optional  bool              `json:"optional"`
	AltText   string            `json:"alt_text"`
	Title     *bkText           `json:"title"`
}

// blockView is one block for the templates.
type blockView struct {
	Type      string
	BlockID   string
	Text      template.HTML
	Fields    []template.HTML
	Accessory *elementView
	Elements  []elementView
	Input     *inputView
	Note      string
}

// elementView is a block element for the templates.
type elementView struct {
	Type     string // button, select, text, image, unsupported
	ActionID string
	BlockID  string
	Text     template.HTML
	Style    string // "primary", "danger" or ""
	Href     string // a link button's checked URL
	Options  []optionView
	Disabled bool
	Note     string
}

type optionView struct {
	Value       string
	Text        template.HTML
	Description template.HTML
	Label       string // plain text with emoji, for <option>, which holds no markup
	Selected    bool
	Group       string // an option group's label, on its first option
}

// inputView is an input block of a modal as a form field.
type inputView struct {
	FieldID     string
	Kind        string // text, textarea, select, radio, checkbox, unsupported
	ElementType string
	ActionID    string
	Label       template.HTML
	Hint        template.HTML
	Optional    bool
	Placeholder string
	Value       string
	InputType   string // text, email, url, number
	MaxLength   int
	MinLength   int
	Options     []optionView
	Error       string
}

// blockRenderer turns Block Kit JSON into views. interactive is false
// where the reader cannot act (the page's watch mode, a closed modal);
// errors are a modal's inline field errors by block_id.
type blockRenderer struct {
	names       names
	interactive bool
	errors      map[string]string
	formID      string // prefix of form field ids, unique per modal
}

// render draws raw (a JSON array of blocks) as HTML.
func (r blockRenderer) render(raw json.RawMessage) (template.HTML, error) {
	var blocks []json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &blocks) != nil {
		return "", nil
	}
	views := make([]blockView, 0, len(blocks))
	for i, b := range blocks {
		views = append(views, r.block(b, i))
	}
	var buf bytes.Buffer
	if err := webTemplates.ExecuteTemplate(&buf, "blocks", views); err != nil {
		return "", err
	}
	return template.HTML(buf.String()), nil
}

func (r blockRenderer) block(raw json.RawMessage, index int) blockView {
	var b bkBlock
	if err := json.Unmarshal(raw, &b); err != nil {
		return blockView{Type: "unsupported", Note: "[a block the page cannot read]"}
	}
	v := blockView{Type: b.Type, BlockID: b.BlockID}
	switch b.Type {
	case "section":
		v.Text = b.Text.html(r.names)
		for i := range b.Fields {
			v.Fields = append(v.Fields, b.Fields[i].html(r.names))
		}
		if len(b.Accessory) > 0 {
			e := r.element(b.Accessory, b.BlockID)
			v.Accessory = &e
		}
	case "header":
		v.Text = b.Text.html(r.names)
	case "context", "actions":
		for _, e := range b.Elements {
			v.Elements = append(v.Elements, r.element(e, b.BlockID))
		}
	case "divider":
	case "rich_text":
		v.Text = renderRichText(b.Elements, r.names)
	case "image":
		v.Type = "image"
		v.Text = renderPlain("🖼 "+cmp.Or(b.Title.plain(), b.AltText), true)
	case "input":
		in := r.input(b, index)
		v.Input = &in
	default:
		v.Type, v.Note = "unsupported", "["+b.Type+" block]"
	}
	return v
}

func (r blockRenderer) element(raw json.RawMessage, blockID string) elementView {
	var e bkElement
	if err := json.Unmarshal(raw, &e); err != nil {
		return elementView{Type: "unsupported", Note: "[an element the page cannot read]"}
	}
	v := elementView{ActionID: e.ActionID, BlockID: blockID, Disabled: !r.interactive}
	switch e.Type {
	case "button":
		v.Type = "button"
		v.Text = e.textObject().html(r.names)
		if e.Style == "primary" || e.Style == "danger" {
			v.Style = e.Style
		}
		if href, ok := safeHref(e.URL); ok {
			v.Href = href
		}
	case "static_select":
		v.Type = "select"
		v.Text = renderPlain(e.Placeholder.plain(), true)
		v.Options = r.options(e, e.InitialOption, nil)
	case "mrkdwn", "plain_text":
		v.Type = "text"
		v.Text = e.textObject().html(r.names)
	case "image":
		v.Type = "text"
		v.Text = renderPlain("🖼 "+e.AltText, true)
	default:
		v.Type, v.Note = "unsupported", "["+e.Type+"]"
	}
	return v
}

// options lists an element's options, marking the initial ones.
func (r blockRenderer) options(e bkElement, initial *bkOption, initials []bkOption) []optionView {
	selected := map[string]bool{}
	if initial != nil {
		selected[initial.Value] = true
	}
	for _, o := range initials {
		selected[o.Value] = true
	}
	var out []optionView
	add := func(opts []bkOption, group string) {
		for i, o := range opts {
			ov := optionView{Value: o.Value, Text: o.Text.html(r.names), Label: replaceEmoji(o.Text.Text), Selected: selected[o.Value]}
			if o.Description != nil {
				ov.Description = o.Description.html(r.names)
			}
			if i == 0 {
				ov.Group = group
			}
			out = append(out, ov)
		}
	}
	add(e.Options, "")
	for _, g := range e.OptionGroups {
		add(g.Options, g.Label.Text)
	}
	return out
}

// input reads an input block as a form field.
func (r blockRenderer) input(b bkBlock, index int) inputView {
	var e bkElement
	_ = json.Unmarshal(b.Element, &e)
	v := inputView{
		FieldID:     r.formID + "-" + strconv.Itoa(index),
		ElementType: e.Type,
		ActionID:    e.ActionID,
		Label:       b.Label.html(r.names),
		Hint:        b.Hint.html(r.names),
		Optional:    b.Optional,
		Placeholder: e.Placeholder.plain(),
		Error:       r.errors[b.BlockID],
	}
	switch e.Type {
	case "plain_text_input", "email_text_input", "url_text_input", "number_input":
		v.Kind, v.Value = "text", e.InitialValue
		v.InputType = map[string]string{"email_text_input": "email", "url_text_input": "url", "number_input": "number"}[e.Type]
		if v.InputType == "" {
			v.InputType = "text"
		}
		if e.Multiline {
			v.Kind = "textarea"
		}
		v.MaxLength, v.MinLength = e.MaxLength, e.MinLength
	case "static_select":
		v.Kind = "select"
		v.Options = r.options(e, e.InitialOption, nil)
	case "radio_buttons":
		v.Kind = "radio"
		v.Options = r.options(e, e.InitialOption, nil)
	case "checkboxes":
		v.Kind = "checkbox"
		v.Options = r.options(e, nil, e.InitialOptions)
	default:
		v.Kind = "unsupported"
	}
	return v
}
