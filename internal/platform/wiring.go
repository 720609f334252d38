package platform

import (
	"fmt"
	"slices"
)

// Link is one dependency of a service run here, and how it is reached.
type Link struct {
	// From is the service that calls; To the service it calls.
	From, To string
	// InProcess reports a direct call to the service running in this
	// process; otherwise the call is Connect over HTTP to URL.
	InProcess bool
	URL       string
}

// String reads "order -> wallet (in process)" or "order -> wallet (http://...)".
func (l Link) String() string {
	if l.InProcess {
		return fmt.Sprintf("%s -> %s (in process)", l.From, l.To)
	}
	return fmt.Sprintf("%s -> %s (%s)", l.From, l.To, l.URL)
}

// resolve decides how each service run here reaches each service it needs:
// in process when the dependency runs here, whatever order the services
// were listed in, else at Config.RemoteURL (which is then required).
func (p *Platform) resolve() error {
	for _, u := range p.units {
		for _, dep := range u.spec.needs {
			l := Link{From: u.spec.name, To: dep, InProcess: p.cfg.runs(dep), URL: p.cfg.RemoteURL}
			if l.InProcess {
				l.URL = ""
			} else if p.cfg.RemoteURL == "" {
				return fmt.Errorf("platform: %s needs %s, which does not run here: run it here or give its URL (RemoteURL, --services-url)", u.spec.name, dep)
			}
			p.wiring = append(p.wiring, l)
		}
	}
	return nil
}

// Wiring lists how every service run here reaches the services it needs,
// in start order.
func (p *Platform) Wiring() []Link { return slices.Clone(p.wiring) }
