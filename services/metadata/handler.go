package metadata

import (
	"context"
	"errors"
	"strings"
	"time"

	"connectrpc.com/connect"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1/metadatav1connect"
	"github.com/tradex-mesh/tradex/internal/paging"
	"github.com/tradex-mesh/tradex/streams"
)

// errShuttingDown ends watch streams when the service stops.
var errShuttingDown = errors.New("metadata service shutting down, reconnect")

// handler serves MetadataService: it converts requests to the domain,
// calls the service and converts results back, translating errors once.
type handler struct {
	s *Service
}

var _ metadatav1connect.MetadataServiceHandler = (*handler)(nil)

// fail translates err for the client (see toConnect); what the client
// does not see is logged with the procedure.
func (h *handler) fail(ctx context.Context, procedure string, err error) error {
	return toConnect(ctx, h.s.log.With("procedure", procedure), err)
}

// GetInstrument returns one instrument by symbol.
func (h *handler) GetInstrument(ctx context.Context, req *metadatav1.GetInstrumentRequest) (*metadatav1.GetInstrumentResponse, error) {
	in, err := h.s.getInstrument(ctx, req.GetSymbol())
	if err != nil {
		return nil, h.fail(ctx, metadatav1connect.MetadataServiceGetInstrumentProcedure, err)
	}
	return &metadatav1.GetInstrumentResponse{Instrument: instrumentToProto(in)}, nil
}

// ListInstruments returns one page of instruments ordered by symbol.
func (h *handler) ListInstruments(ctx context.Context, req *metadatav1.ListInstrumentsRequest) (*metadatav1.ListInstrumentsResponse, error) {
	const procedure = metadatav1connect.MetadataServiceListInstrumentsProcedure
	f := filterFromProto(req)
	if f.Kind < 0 {
		return nil, h.fail(ctx, procedure, invalidf("kind", "unknown kind %d", req.GetKind()))
	}
	if f.Status < 0 {
		return nil, h.fail(ctx, procedure, invalidf("status", "unknown status %d", req.GetStatus()))
	}
	after, size, err := pageRequest(req.GetPage(), instrumentsList)
	if err != nil {
		return nil, h.fail(ctx, procedure, err)
	}
	items, next, err := h.s.listInstruments(ctx, f, after, size)
	if err != nil {
		return nil, h.fail(ctx, procedure, err)
	}
	res := &metadatav1.ListInstrumentsResponse{
		Instruments: make([]*metadatav1.Instrument, 0, len(items)),
		Page:        pageResponse(instrumentsList, next),
	}
	for _, in := range items {
		res.Instruments = append(res.Instruments, instrumentToProto(in))
	}
	return res, nil
}

// CreateInstrument adds an instrument.
func (h *handler) CreateInstrument(ctx context.Context, req *metadatav1.CreateInstrumentRequest) (*metadatav1.CreateInstrumentResponse, error) {
	in, err := h.s.createInstrument(ctx, specFromProto(req), h.s.actor(ctx))
	if err != nil {
		return nil, h.fail(ctx, metadatav1connect.MetadataServiceCreateInstrumentProcedure, err)
	}
	return &metadatav1.CreateInstrumentResponse{Instrument: instrumentToProto(in)}, nil
}

// UpdateInstrument changes the trading rules of an instrument.
func (h *handler) UpdateInstrument(ctx context.Context, req *metadatav1.UpdateInstrumentRequest) (*metadatav1.UpdateInstrumentResponse, error) {
	change := changeFromProto(req)
	in, err := h.s.changeInstrument(ctx, req.GetSymbol(), req.ExpectedRevision, "", func(cur Instrument, now time.Time) (Instrument, []string, error) {
		return cur.Update(change, now)
	})
	if err != nil {
		return nil, h.fail(ctx, metadatav1connect.MetadataServiceUpdateInstrumentProcedure, err)
	}
	return &metadatav1.UpdateInstrumentResponse{Instrument: instrumentToProto(in)}, nil
}

// HaltInstrument stops trading of an instrument.
func (h *handler) HaltInstrument(ctx context.Context, req *metadatav1.HaltInstrumentRequest) (*metadatav1.HaltInstrumentResponse, error) {
	reason := req.GetReason()
	in, err := h.s.changeInstrument(ctx, req.GetSymbol(), req.ExpectedRevision, reason, func(cur Instrument, now time.Time) (Instrument, []string, error) {
		return cur.Halt(reason, now)
	})
	if err != nil {
		return nil, h.fail(ctx, metadatav1connect.MetadataServiceHaltInstrumentProcedure, err)
	}
	return &metadatav1.HaltInstrumentResponse{Instrument: instrumentToProto(in)}, nil
}

// ResumeInstrument reopens trading of an instrument.
func (h *handler) ResumeInstrument(ctx context.Context, req *metadatav1.ResumeInstrumentRequest) (*metadatav1.ResumeInstrumentResponse, error) {
	reason := req.GetReason()
	in, err := h.s.changeInstrument(ctx, req.GetSymbol(), req.ExpectedRevision, reason, func(cur Instrument, now time.Time) (Instrument, []string, error) {
		return cur.Resume(reason, now)
	})
	if err != nil {
		return nil, h.fail(ctx, metadatav1connect.MetadataServiceResumeInstrumentProcedure, err)
	}
	return &metadatav1.ResumeInstrumentResponse{Instrument: instrumentToProto(in)}, nil
}

// GetConfig returns one configuration entry.
func (h *handler) GetConfig(ctx context.Context, req *metadatav1.GetConfigRequest) (*metadatav1.GetConfigResponse, error) {
	e, err := h.s.getConfig(ctx, req.GetKey())
	if err != nil {
		return nil, h.fail(ctx, metadatav1connect.MetadataServiceGetConfigProcedure, err)
	}
	return &metadatav1.GetConfigResponse{Entry: configEntryToProto(e)}, nil
}

// SetConfig creates or replaces a configuration entry.
func (h *handler) SetConfig(ctx context.Context, req *metadatav1.SetConfigRequest) (*metadatav1.SetConfigResponse, error) {
	e, err := h.s.setConfig(ctx, req.GetKey(), req.GetValue(), req.ExpectedRevision)
	if err != nil {
		return nil, h.fail(ctx, metadatav1connect.MetadataServiceSetConfigProcedure, err)
	}
	return &metadatav1.SetConfigResponse{Entry: configEntryToProto(e)}, nil
}

// DeleteConfig removes a configuration entry.
func (h *handler) DeleteConfig(ctx context.Context, req *metadatav1.DeleteConfigRequest) (*metadatav1.DeleteConfigResponse, error) {
	if err := h.s.deleteConfig(ctx, req.GetKey(), req.ExpectedRevision); err != nil {
		return nil, h.fail(ctx, metadatav1connect.MetadataServiceDeleteConfigProcedure, err)
	}
	return &metadatav1.DeleteConfigResponse{}, nil
}

// ListConfig returns one page of configuration entries ordered by key.
func (h *handler) ListConfig(ctx context.Context, req *metadatav1.ListConfigRequest) (*metadatav1.ListConfigResponse, error) {
	const procedure = metadatav1connect.MetadataServiceListConfigProcedure
	after, size, err := pageRequest(req.GetPage(), configList)
	if err != nil {
		return nil, h.fail(ctx, procedure, err)
	}
	items, next, err := h.s.listConfig(ctx, req.GetPrefix(), after, size)
	if err != nil {
		return nil, h.fail(ctx, procedure, err)
	}
	res := &metadatav1.ListConfigResponse{
		Entries: make([]*metadatav1.ConfigEntry, 0, len(items)),
		Page:    pageResponse(configList, next),
	}
	for _, e := range items {
		res.Entries = append(res.Entries, configEntryToProto(e))
	}
	return res, nil
}

// WatchConfig streams the current entries under the prefix, one
// snapshot_end, then every change, until the client goes away (or the
// service stops: Unavailable).
func (h *handler) WatchConfig(ctx context.Context, req *metadatav1.WatchConfigRequest, stream *connect.ServerStream[metadatav1.WatchConfigResponse]) error {
	const procedure = metadatav1connect.MetadataServiceWatchConfigProcedure
	prefix := req.GetPrefix()
	if err := ValidateConfigPrefix(prefix); err != nil {
		return h.fail(ctx, procedure, invalid("prefix", err))
	}
	st, err := h.s.store(ctx)
	if err != nil {
		return h.fail(ctx, procedure, err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-h.s.stopping:
			cancel(errShuttingDown)
		case <-ctx.Done():
		}
	}()

	var position uint64 // the highest revision in the snapshot
	err = streams.WatchKV(ctx, st.config, ">", func(_ context.Context, u streams.Update[*metadatav1.ConfigEntry]) error {
		position = max(position, u.Revision)
		switch {
		case u.SnapshotEnd:
			return stream.Send(&metadatav1.WatchConfigResponse{Event: &metadatav1.WatchConfigResponse_SnapshotEnd{
				SnapshotEnd: &commonv1.SnapshotEnd{Sequence: position},
			}})
		case !strings.HasPrefix(u.Key, prefix):
			return nil
		case u.Current:
			return stream.Send(&metadatav1.WatchConfigResponse{Event: &metadatav1.WatchConfigResponse_Current{
				Current: configEntryToProto(configEntryFromProto(u.Value, u.Revision)),
			}})
		default:
			ch := ConfigChange{Key: u.Key, Revision: u.Revision, Deleted: u.Deleted, ChangedAt: h.s.now()}
			if !u.Deleted {
				ch.Value, ch.ChangedAt = u.Value.GetValue(), fromTimestamp(u.Value.GetUpdatedAt())
			}
			return stream.Send(&metadatav1.WatchConfigResponse{Event: &metadatav1.WatchConfigResponse_Changed{
				Changed: configChangeToProto(ch),
			}})
		}
	})
	switch {
	case errors.Is(context.Cause(ctx), errShuttingDown):
		return connect.NewError(connect.CodeUnavailable, errShuttingDown)
	case ctx.Err() != nil:
		return connect.NewError(connect.CodeCanceled, ctx.Err()) // the client went away
	}
	return h.fail(ctx, procedure, err)
}

// List names of the page tokens (internal/paging): a token of one list is
// refused by the other.
const (
	instrumentsList = "instruments"
	configList      = "config"
)

// pageRequest reads a page request of list: the key after which the page
// starts and the page size.
func pageRequest(p *commonv1.PageRequest, list string) (after string, size int, err error) {
	size, after, err = paging.Read(p, list)
	if err != nil {
		return "", 0, invalid(paging.Field(err), err)
	}
	return after, size, nil
}

// pageResponse is the page response of list for the last key of a page
// ("" on the last page).
func pageResponse(list, next string) *commonv1.PageResponse {
	return &commonv1.PageResponse{NextPageToken: paging.Token(list, next)}
}
