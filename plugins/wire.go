package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tallyhq/tally/core/strictjson"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The gRPC service is written by hand, with protobuf's well-known types as
// messages, so that no generated code is needed:
//
//	service tally.connector.v1.Connector {
//	  rpc Describe(google.protobuf.Empty) returns (google.protobuf.BytesValue);           // JSON Description
//	  rpc Exchange(google.protobuf.BytesValue) returns (google.protobuf.BytesValue);      // signed request -> signed response
//	  rpc RegisterLicensingID(google.protobuf.BytesValue) returns (google.protobuf.Empty); // certificate DER
//	  rpc ReportUsage(google.protobuf.BytesValue) returns (google.protobuf.Empty);         // signed usage report
//	}
const serviceName = "tally.connector.v1.Connector"

// wireLimit is the largest gRPC message either side accepts: a payload
// plus room for the framing.
const wireLimit = MaxPayload + 64<<10

// errorMarker is attached to every status a connector reports, so that the
// host tells a connector's own error from a failure of the transport (a
// dead or hung process), which share status codes.
const errorMarker = "tally.connector.v1.error"

// connectorService is the handler type of the service description.
type connectorService interface {
	connector() Connector
}

type grpcServer struct {
	impl Connector
}

func (s *grpcServer) connector() Connector { return s.impl }

// rpcMethod is one method of the service: how to make its request message
// and how to serve it with a Connector.
type rpcMethod struct {
	name       string
	newRequest func() proto.Message
	serve      func(ctx context.Context, c Connector, req proto.Message) (proto.Message, error)
}

var rpcMethods = [...]rpcMethod{
	{"Describe", func() proto.Message { return new(emptypb.Empty) },
		func(ctx context.Context, c Connector, _ proto.Message) (proto.Message, error) {
			d, err := c.Describe(ctx)
			if err != nil {
				return nil, err
			}
			b, err := encodeDescription(d)
			if err != nil {
				return nil, err
			}
			return wrapperspb.Bytes(b), nil
		}},
	{"Exchange", newBytesValue,
		func(ctx context.Context, c Connector, req proto.Message) (proto.Message, error) {
			resp, err := c.Exchange(ctx, bytesOf(req))
			if err != nil {
				return nil, err
			}
			if err := checkPayload("response", resp); err != nil {
				return nil, err
			}
			return wrapperspb.Bytes(resp), nil
		}},
	{"RegisterLicensingID", newBytesValue,
		func(ctx context.Context, c Connector, req proto.Message) (proto.Message, error) {
			return new(emptypb.Empty), c.RegisterLicensingID(ctx, bytesOf(req))
		}},
	{"ReportUsage", newBytesValue,
		func(ctx context.Context, c Connector, req proto.Message) (proto.Message, error) {
			return new(emptypb.Empty), c.ReportUsage(ctx, bytesOf(req))
		}},
}

func newBytesValue() proto.Message { return new(wrapperspb.BytesValue) }

func bytesOf(m proto.Message) []byte { return m.(*wrapperspb.BytesValue).GetValue() }

func fullMethod(name string) string { return "/" + serviceName + "/" + name }

// serviceDesc describes the connector service to a grpc.Server.
func serviceDesc() *grpc.ServiceDesc {
	sd := &grpc.ServiceDesc{
		ServiceName: serviceName,
		HandlerType: (*connectorService)(nil),
		Metadata:    "plugins/wire.go",
	}
	for _, m := range rpcMethods {
		sd.Methods = append(sd.Methods, grpc.MethodDesc{MethodName: m.name, Handler: m.handler})
	}
	return sd
}

func (m rpcMethod) handler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	req := m.newRequest()
	if err := dec(req); err != nil {
		return nil, err
	}
	impl := srv.(connectorService).connector()
	handle := func(ctx context.Context, req any) (any, error) {
		ctx, cancel := withMargin(ctx)
		defer cancel()
		resp, err := m.serve(ctx, impl, req.(proto.Message))
		if err != nil {
			return nil, toStatus(err)
		}
		return resp, nil
	}
	if interceptor == nil {
		return handle(ctx, req)
	}
	return interceptor(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: fullMethod(m.name)}, handle)
}

// withMargin ends the connector's work a little before the host's deadline,
// so that a slow back office comes back as the connector's own error and is
// not taken for a hung process.
func withMargin(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	margin := min(time.Until(deadline)/10, time.Second)
	return context.WithDeadline(ctx, deadline.Add(-margin))
}

// toStatus turns a connector's error into the marked status that carries it.
func toStatus(err error) error {
	st := status.New(codeOf(err), clip(err.Error()))
	if marked, derr := st.WithDetails(wrapperspb.String(errorMarker)); derr == nil {
		st = marked
	}
	return st.Err()
}

// fromStatus turns what a call returned into a *ConnectorError when the
// connector reported it, and leaves transport failures as they are.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range st.Details() {
		if s, ok := d.(*wrapperspb.StringValue); ok && s.GetValue() == errorMarker {
			return &ConnectorError{Code: st.Code(), Message: clip(st.Message())}
		}
	}
	return err
}

// grpcClient is the host's side of the service: a Connector whose calls go
// to the plugin process.
type grpcClient struct {
	conn *grpc.ClientConn
	// done is closed by go-plugin when the plugin process has exited.
	done <-chan struct{}
}

var _ Connector = (*grpcClient)(nil)

func (c *grpcClient) invoke(ctx context.Context, method string, in, out proto.Message) error {
	err := c.conn.Invoke(ctx, fullMethod(method), in, out,
		grpc.MaxCallRecvMsgSize(wireLimit), grpc.MaxCallSendMsgSize(wireLimit))
	return fromStatus(err)
}

func (c *grpcClient) Describe(ctx context.Context) (Description, error) {
	out := new(wrapperspb.BytesValue)
	if err := c.invoke(ctx, "Describe", new(emptypb.Empty), out); err != nil {
		return Description{}, err
	}
	return decodeDescription(out.GetValue())
}

func (c *grpcClient) Exchange(ctx context.Context, request []byte) ([]byte, error) {
	if err := checkPayload("request", request); err != nil {
		return nil, err
	}
	out := new(wrapperspb.BytesValue)
	if err := c.invoke(ctx, "Exchange", wrapperspb.Bytes(request), out); err != nil {
		return nil, err
	}
	return out.GetValue(), nil
}

func (c *grpcClient) RegisterLicensingID(ctx context.Context, certDER []byte) error {
	return c.send(ctx, "RegisterLicensingID", "certificate", certDER)
}

func (c *grpcClient) ReportUsage(ctx context.Context, report []byte) error {
	return c.send(ctx, "ReportUsage", "usage report", report)
}

func (c *grpcClient) send(ctx context.Context, method, what string, payload []byte) error {
	if err := checkPayload(what, payload); err != nil {
		return err
	}
	return c.invoke(ctx, method, wrapperspb.Bytes(payload), new(emptypb.Empty))
}

// maxDescription bounds the JSON of a Description on the wire.
const maxDescription = 4 << 10

// maxField bounds a Description's name and version.
const maxField = 64

func (d Description) validate() error {
	if d.Name == "" || len(d.Name) > maxField {
		return fmt.Errorf("%w: connector name must have 1 to %d characters", ErrInvalid, maxField)
	}
	for _, r := range d.Name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%w: connector name %q: only letters, digits, '-', '_' and '.'", ErrInvalid, d.Name)
		}
	}
	if len(d.Version) > maxField {
		return fmt.Errorf("%w: connector version longer than %d bytes", ErrInvalid, maxField)
	}
	for _, r := range d.Version {
		if r < 0x20 || r > 0x7e {
			return fmt.Errorf("%w: connector version %q: printable ASCII only", ErrInvalid, d.Version)
		}
	}
	return nil
}

func encodeDescription(d Description) ([]byte, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	return json.Marshal(d)
}

// decodeDescription reads the JSON Description a connector sent.
func decodeDescription(b []byte) (Description, error) {
	if len(b) > maxDescription {
		return Description{}, fmt.Errorf("%w: description of %d bytes", ErrInvalid, len(b))
	}
	var d Description
	if err := strictjson.Unmarshal(b, &d); err != nil {
		return Description{}, fmt.Errorf("%w: description: %w", ErrInvalid, err)
	}
	if err := d.validate(); err != nil {
		return Description{}, err
	}
	return d, nil
}

// isTransportLimit reports whether err is gRPC refusing a message over the
// size limit, which says nothing about the health of the process.
func isTransportLimit(err error) bool {
	var ce *ConnectorError
	return !errors.As(err, &ce) && status.Code(err) == codes.ResourceExhausted
}
