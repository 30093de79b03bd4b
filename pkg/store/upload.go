package store

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"easychat/pkg/domain"
	"easychat/pkg/reject"
)

// Collections of files. Uploads holds the uploads no message uses yet;
// UploadUse holds one document per file key that is spoken for: by the
// message that uses it, or by the orphan sweeper that deletes it. Who
// inserts a key's UploadUse document first wins, so a file is never both
// sent and deleted (FerretDB updates are not atomic; inserts are).
const (
	Uploads   = "uploads"
	UploadUse = "upload_use"
)

// sweptBy is the msg of an UploadUse document the sweeper inserted.
const sweptBy = ""

type uploadUse struct {
	Key string `bson:"_id"`
	Msg string `bson:"msg"`
}

// AddUpload records an upload grant.
func (s *Store) AddUpload(ctx context.Context, u domain.Upload) error {
	if _, err := s.db.Collection(Uploads).InsertOne(ctx, u); err != nil {
		return fmt.Errorf("recording upload %s: %w", u.Key, err)
	}
	return nil
}

// UseUpload marks the file key as used by message msgID, once: the same
// message may ask again (a resend), another message is refused (Conflict),
// and a file the sweeper took is gone (NotFound).
func (s *Store) UseUpload(ctx context.Context, key, msgID string) error {
	_, err := s.db.Collection(UploadUse).InsertOne(ctx, uploadUse{Key: key, Msg: msgID})
	if isDup(err) {
		u, ferr := findByID[uploadUse](ctx, s.db.Collection(UploadUse), key, "file use")
		switch {
		case ferr != nil:
			return ferr
		case u.Msg == sweptBy:
			return reject.NotFound("file not found: upload it again")
		case u.Msg != msgID:
			return reject.Conflict("file already sent in another message: upload it again")
		}
		err = nil
	}
	if err != nil {
		return fmt.Errorf("recording the use of file %s: %w", key, err)
	}
	// Spoken for: no longer an orphan candidate. A failure here leaves the
	// record for the sweeper, which finds the use and drops it.
	_, _ = s.db.Collection(Uploads).DeleteOne(ctx, bson.D{{Key: "_id", Value: key}})
	return nil
}

// ClaimOrphans returns up to limit uploads granted before `before` (unix ms)
// that no message uses, each now claimed for deletion: no message can use
// it any more. The caller deletes the object, then DropUpload. A claim whose
// object deletion failed before is returned again.
func (s *Store) ClaimOrphans(ctx context.Context, before int64, limit int) ([]domain.Upload, error) {
	cur, err := s.db.Collection(Uploads).Find(ctx, bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: before}}}},
		options.Find().SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("finding orphan uploads: %w", err)
	}
	var old []domain.Upload
	if err := cur.All(ctx, &old); err != nil {
		return nil, fmt.Errorf("reading orphan uploads: %w", err)
	}
	var out []domain.Upload
	for _, u := range old {
		_, err := s.db.Collection(UploadUse).InsertOne(ctx, uploadUse{Key: u.Key, Msg: sweptBy})
		if err == nil {
			out = append(out, u)
			continue
		}
		if !isDup(err) {
			return out, fmt.Errorf("claiming orphan upload %s: %w", u.Key, err)
		}
		use, err := findByID[uploadUse](ctx, s.db.Collection(UploadUse), u.Key, "file use")
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return out, err
		}
		if use.Msg == sweptBy {
			out = append(out, u) // ours from an earlier sweep
			continue
		}
		if err := s.DropUpload(ctx, u.Key); err != nil { // used by a message
			return out, err
		}
	}
	return out, nil
}

// QueueDeletion hands the file key to the orphan sweeper: its message was
// recalled, and the file store could not delete it then. The key is spoken
// for by the sweeper (no message may use it again, not even a resend of its
// own), and an upload record older than any cutoff has the next sweep take it.
func (s *Store) QueueDeletion(ctx context.Context, key string) error {
	_, err := s.db.Collection(UploadUse).ReplaceOne(ctx, bson.D{{Key: "_id", Value: key}},
		uploadUse{Key: key, Msg: sweptBy}, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("handing file %s to the sweeper: %w", key, err)
	}
	if _, err := s.db.Collection(Uploads).InsertOne(ctx, domain.Upload{Key: key, At: 0}); err != nil && !isDup(err) {
		return fmt.Errorf("queueing file %s for deletion: %w", key, err)
	}
	return nil
}

// DropUpload forgets an upload record.
func (s *Store) DropUpload(ctx context.Context, key string) error {
	if _, err := s.db.Collection(Uploads).DeleteOne(ctx, bson.D{{Key: "_id", Value: key}}); err != nil {
		return fmt.Errorf("dropping upload %s: %w", key, err)
	}
	return nil
}

func (s *Store) ensureUploadIndex(ctx context.Context) error {
	_, err := s.db.Collection(Uploads).Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "at", Value: 1}}, Options: options.Index().SetName("at_1"),
	})
	if err != nil {
		return fmt.Errorf("creating the uploads index: %w", err)
	}
	return nil
}
