-- A verified signup made for an invitation (upstream's `pending_signup_actions.invitation_id`):
-- completing the challenge creates the account and accepts the invitation. Deleting the
-- invitation (with its organization) deletes the pending row, so such a challenge can no
-- longer complete.
ALTER TABLE pending_signup_actions
    ADD COLUMN invitation_id UUID
        CONSTRAINT pending_signup_actions_invitation_id_fkey
        REFERENCES organization_invitations (id) ON DELETE CASCADE;

CREATE INDEX pending_signup_actions_invitation_id_idx
    ON pending_signup_actions (invitation_id) WHERE invitation_id IS NOT NULL;
