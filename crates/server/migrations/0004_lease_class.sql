-- A lease may be asked for a class of models (any of them); admission pins it to one, kept in `model`, and
-- `class` keeps what was asked (a class name or models separated by commas; NULL for one model).
ALTER TABLE leases ADD COLUMN class TEXT;
