package streams

import (
	"slices"
	"strings"
)

// Permissions are the subjects a NATS user may publish to and subscribe
// to; nothing else is allowed.
type Permissions struct {
	Publish, Subscribe []string
}

// InboxPrefix is the inbox prefix of a user's connection
// (nats.CustomInboxPrefix): replies to its requests arrive there, and only
// it may subscribe to it.
func InboxPrefix(user string) string { return "_INBOX_" + user }

// ServicePermissions are the permissions of user, the NATS user of
// service (named as in the catalog's producers and consumers), derived
// from the catalog: it may publish the topics it produces and the dead letters of
// those it consumes; read (stream info, direct gets, consumers and their
// acks) the topics it produces or consumes, and those anyone may read;
// create and use its own stores; and receive replies on its own inbox. So
// no service can forge another's events: the wallet cannot publish an
// engine trade, the matching engine cannot append to the wallet's journal.
func (c *Catalog) ServicePermissions(service, user string) Permissions {
	var p perms
	for _, t := range c.topics {
		produces := slices.Contains(t.Producers, service)
		consumes := slices.Contains(t.Consumers, service) || slices.Contains(t.Consumers, "all")
		if produces {
			p.pub(t.Name + ".>")
		}
		if consumes {
			p.pub(t.DLQ() + ".>")
			p.readStream(StreamName(t.DLQ())) // the dead-letter write checks the stream
		}
		if produces || consumes || slices.Contains(t.Consumers, "any") {
			p.readStream(t.Stream())
		}
	}
	for _, s := range c.stores {
		if s.Owner == service {
			p.ownStore(s)
		}
	}
	return p.done(user)
}

// ReaderPermissions are the permissions of a user that may read every
// topic (and its dead letters) and publish nothing: a Kafka-style consumer
// outside the platform, an auditor.
func (c *Catalog) ReaderPermissions(user string) Permissions {
	var p perms
	for _, t := range c.topics {
		p.readStream(t.Stream())
		p.readStream(StreamName(t.DLQ()))
	}
	return p.done(user)
}

// BridgePermissions are the permissions of a Kafka bridge's user: read
// every topic and its dead letters (its exports' durable consumers, the
// duplicate look-ups of its imports, the schema registry), and publish
// every topic and dead-letter topic (its imports). It cannot create,
// change or delete a stream, or write a store.
func (c *Catalog) BridgePermissions(user, schemaBucket string) Permissions {
	var p perms
	for _, t := range c.topics {
		p.pub(t.Name+".>", t.DLQ()+".>")
		p.readStream(t.Stream())
		p.readStream(StreamName(t.DLQ()))
	}
	p.readStream("KV_" + schemaBucket)
	p.pub("$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST")
	return p.done(user)
}

// perms collects a user's permissions.
type perms struct{ publish, subscribe []string }

func (p *perms) pub(subjects ...string) { p.publish = append(p.publish, subjects...) }

// readStream allows reading stream: its info, direct and API gets,
// consumers of any kind on it, acknowledging their messages, and
// answering their flow control (the push consumers of KV watchers and
// object reads ask for it; a refused answer stalls them).
func (p *perms) readStream(stream string) {
	p.pub("$JS.API.STREAM.INFO."+stream,
		"$JS.API.STREAM.MSG.GET."+stream,
		"$JS.API.DIRECT.GET."+stream, "$JS.API.DIRECT.GET."+stream+".>",
		"$JS.API.CONSUMER.CREATE."+stream, "$JS.API.CONSUMER.CREATE."+stream+".>",
		"$JS.API.CONSUMER.DURABLE.CREATE."+stream+".>",
		"$JS.API.CONSUMER.INFO."+stream+".>", "$JS.API.CONSUMER.DELETE."+stream+".>",
		"$JS.API.CONSUMER.MSG.NEXT."+stream+".>",
		"$JS.ACK."+stream+".>", "$JS.FC."+stream+".>")
}

// ownStore allows everything a KV bucket's or object store's owner does:
// create and update its stream, write and purge its subjects, read it.
func (p *perms) ownStore(s Store) {
	stream, subjects := "KV_"+s.Name, "$KV."+s.Name+".>"
	if s.Kind == ObjectStore {
		stream, subjects = "OBJ_"+s.Name, "$O."+s.Name+".>"
	}
	p.pub(subjects, "$JS.API.STREAM.CREATE."+stream, "$JS.API.STREAM.UPDATE."+stream, "$JS.API.STREAM.PURGE."+stream)
	p.readStream(stream)
}

// done adds what every user needs (account info; its own inbox) and
// returns the permissions, each subject once, sorted.
func (p *perms) done(user string) Permissions {
	p.pub("$JS.API.INFO")
	p.subscribe = append(p.subscribe, InboxPrefix(user)+".>")
	out := Permissions{Publish: slices.Compact(slices.Sorted(slices.Values(p.publish))),
		Subscribe: slices.Compact(slices.Sorted(slices.Values(p.subscribe)))}
	return out
}

// Allows reports whether the permissions allow publishing to subject (NATS
// wildcard rules: "*" one token, ">" the rest).
func (p Permissions) Allows(subject string) bool {
	return slices.ContainsFunc(p.Publish, func(pattern string) bool { return subjectMatches(pattern, subject) })
}

// subjectMatches applies NATS subject wildcards.
func subjectMatches(pattern, subject string) bool {
	pt, st := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, tok := range pt {
		switch {
		case tok == ">":
			return len(st) > i
		case i >= len(st):
			return false
		case tok != "*" && tok != st[i]:
			return false
		}
	}
	return len(pt) == len(st)
}
