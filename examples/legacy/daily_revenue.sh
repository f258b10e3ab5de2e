#!/bin/sh
# A cron-style job as it was before pipewarden: psql runs one SQL file, stops at the first
# error. SHOP_DATABASE_URL is a libpq URL (postgresql://user@host:5432/shop).
set -eu
exec psql "$SHOP_DATABASE_URL" --no-psqlrc --quiet -v ON_ERROR_STOP=1 \
    -f "$(dirname "$0")/daily_revenue.sql"
