package webshop

import (
	"fmt"
	"regexp"
	"strings"

	"shopagent/env"
)

// button is one env action rendered as a submit button.
type button struct {
	Action   string // the env action, e.g. "click[next >]"
	Label    string
	ID       string
	Class    string
	Selected bool
}

type resultView struct {
	Button  button
	ASIN    string
	Title   string
	Price   string
	Visited bool
}

type optionGroupView struct {
	Name    string
	Options []button
}

type itemView struct {
	ASIN    string
	Title   string
	Price   string
	Rating  string
	Groups  []optionGroupView
	SubPage string   // "description", "features", ... or "" on the item page
	SubText []string // the sub-page's paragraphs
}

type doneView struct {
	Reward    float64
	Steps     int
	Purchase  *env.Purchase
	Recorded  string
	RecordErr string
}

// pageView is what page.html renders for a session.
type pageView struct {
	Session     string
	Step        int
	Episode     int
	GoalIndex   int
	GoalID      int64
	Instruction string
	Page        string
	Error       string
	HasSearch   bool
	Nav         []button // back to search, < prev, next >
	ResultsInfo string
	Results     []resultView
	Item        *itemView
	SubNav      []button // description, features, reviews, attributes
	Buy         *button
	Other       []button // clickables not placed elsewhere
	Done        *doneView
	Observation string
	Replay      bool
}

var resultsInfoRE = regexp.MustCompile(`Page \d+ \(Total results: \d+\)`)

// buttonID makes a stable element id from a clickable.
func buttonID(prefix, s string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r - 'A' + 'a')
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}

// pageView builds the page of a session's current observation: every
// clickable of the observation becomes exactly one button. The caller holds
// sess.mu.
func (s *Server) pageView(sess *session, errMsg string) pageView {
	obs := sess.obs
	v := pageView{
		Session:     sess.id,
		Step:        len(sess.rows),
		Episode:     sess.episode,
		GoalIndex:   sess.goalIdx,
		GoalID:      s.GoalID(sess.goalIdx),
		Instruction: obs.Instruction,
		Page:        string(obs.Page),
		Error:       errMsg,
		HasSearch:   obs.HasSearchBar,
		Observation: obs.Text,
		Replay:      s.cfg.ReplayDir != "",
	}
	if sess.done {
		v.Done = &doneView{Reward: sess.reward, Steps: len(sess.rows), Purchase: sess.purchase, Recorded: sess.recorded, RecordErr: sess.recErr}
	}
	shop := s.cfg.Shop
	var prod *env.Product
	if sess.item >= 0 && sess.item < len(shop.Catalog.Products) && (obs.Page == env.PageItem || isSubPage(obs.Page)) {
		prod = &shop.Catalog.Products[sess.item]
		v.Item = &itemView{ASIN: prod.ASIN, Title: prod.Title, Price: prod.PriceText, Rating: prod.Rating}
		if isSubPage(obs.Page) {
			v.Item.SubPage = string(obs.Page)
			v.Item.SubText = subPageText(prod, obs.Page)
		}
	}
	if obs.Page == env.PageResults {
		v.ResultsInfo = resultsInfoRE.FindString(obs.Text)
	}
	// Option values of the open product, by group, in page order.
	optionButtons := map[string]*button{}
	if prod != nil && obs.Page == env.PageItem {
		for gi, g := range prod.Options {
			gv := optionGroupView{Name: g.Name}
			for vi, val := range g.Values {
				lv := strings.ToLower(val)
				gv.Options = append(gv.Options, button{
					Action: env.Click(lv), Label: val, ID: fmt.Sprintf("opt-%d-%d", gi, vi),
					Class: "option", Selected: sess.selected[g.Name] == val,
				})
			}
			v.Item.Groups = append(v.Item.Groups, gv)
		}
		for gi := range v.Item.Groups {
			for oi := range v.Item.Groups[gi].Options {
				b := &v.Item.Groups[gi].Options[oi]
				if _, dup := optionButtons[b.Action]; !dup {
					optionButtons[b.Action] = b
				}
			}
		}
	}
	placed := map[string]bool{}
	for _, c := range obs.Clickables {
		act := env.Click(c)
		switch c {
		case env.ClickBackToSearch:
			v.Nav = append(v.Nav, button{Action: act, Label: "Back to Search", ID: "btn-back", Class: "nav"})
		case env.ClickPrev:
			v.Nav = append(v.Nav, button{Action: act, Label: "< Prev", ID: "btn-prev", Class: "nav"})
		case env.ClickNext:
			v.Nav = append(v.Nav, button{Action: act, Label: "Next >", ID: "btn-next", Class: "nav"})
		case env.ClickDescription, env.ClickFeatures, env.ClickReviews, env.ClickAttributes:
			v.SubNav = append(v.SubNav, button{Action: act, Label: strings.ToUpper(c[:1]) + c[1:], ID: "btn-" + c, Class: "subpage"})
		case env.ClickBuyNow:
			v.Buy = &button{Action: act, Label: "Buy Now", ID: "btn-buy", Class: "buy"}
		default:
			switch {
			case obs.Page == env.PageResults:
				r := resultView{ASIN: c, Visited: sess.visited[c]}
				if i, ok := productByASIN(shop, c); ok {
					p := &shop.Catalog.Products[i]
					r.ASIN, r.Title, r.Price = p.ASIN, p.Title, p.PriceText
				}
				r.Button = button{Action: act, Label: r.ASIN, ID: buttonID("product-", c), Class: "product-link"}
				v.Results = append(v.Results, r)
			case optionButtons[act] != nil:
				placed[act] = true
			default:
				v.Other = append(v.Other, button{Action: act, Label: c, ID: buttonID("other-", c), Class: "other"})
			}
		}
	}
	// Option buttons that the page does not offer (never expected) are
	// dropped so that every button stays a valid action.
	if v.Item != nil {
		for gi := range v.Item.Groups {
			opts := v.Item.Groups[gi].Options[:0]
			for _, b := range v.Item.Groups[gi].Options {
				if placed[b.Action] {
					opts = append(opts, b)
				}
			}
			v.Item.Groups[gi].Options = opts
		}
	}
	return v
}

// subPageText is a sub-page's content, as the env renders it.
func subPageText(p *env.Product, page env.PageKind) []string {
	switch page {
	case env.PageDescription:
		return []string{p.Description}
	case env.PageFeatures:
		return p.BulletPoints
	case env.PageReviews:
		return nil
	case env.PageAttributes:
		return append(append([]string(nil), p.Attributes...), p.Category, p.Query, p.ProductCategory)
	}
	return nil
}
