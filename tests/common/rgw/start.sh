#!/usr/bin/env bash
# Starts a throw-away single-host Ceph cluster with a RADOS Gateway on loopback, for the tests:
# one monitor, one OSD keeping its objects in memory (memstore), no manager, cephx on, and the
# gateway (beast frontend) on 127.0.0.1:$RGW_PORT. Every file lives under $CEPH_DIR.
#
# Env: CEPH_DIR (required, empty or absent), RGW_PORT, MON_PORT, S3_ACCESS_KEY, S3_SECRET_KEY.
# Daemons write their PIDs to $CEPH_DIR/run/{mon.a,osd.0,client.rgw.s3}.pid.
#
# Settings that matter for the tests:
# - the monitor gets a v1 address (`monmaptool --addv`): on a port other than 6789 `--add`
#   makes it v2-only, and the gateway then never connects;
# - `mon data avail crit = 0`: the monitor otherwise refuses to start on a disk with < 5% free;
# - `rgw lc debug interval = 10`: a lifecycle "day" lasts 10 s, so expiration rules really run;
# - `radosgw-admin bucket stats` counts the bytes of noncurrent versions, as B2 bills them.
set -euo pipefail
D=${CEPH_DIR:?CEPH_DIR must be set}
PORT=${RGW_PORT:?RGW_PORT must be set}
MON_PORT=${MON_PORT:?MON_PORT must be set}
mkdir -p "$D"/{mon/ceph-a,osd/ceph-0,run,log}
FSID=$(cat /proc/sys/kernel/random/uuid)
cat > "$D/ceph.conf" <<CONF
[global]
fsid = $FSID
mon host = v1:127.0.0.1:$MON_PORT
mon initial members = a
public addr = 127.0.0.1
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $D/keyring
ms bind ipv4 = true
run dir = $D/run
admin socket = $D/run/\$name.asok
pid file = $D/run/\$name.pid
log file = $D/log/\$name.log
mon data = $D/mon/\$cluster-\$id
osd data = $D/osd/\$cluster-\$id
mon data avail crit = 0
mon data avail warn = 0
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = 2147483648
osd memory target = 939524096
osd max object name len = 460
osd max object namespace len = 64
[osd]
keyring = $D/osd/\$cluster-\$id/keyring
[client.rgw.s3]
rgw frontends = beast endpoint=127.0.0.1:$PORT
rgw data = $D/rgw
rgw dns name = localhost
rgw enable usage log = false
rgw lc debug interval = 10
CONF
C="-c $D/ceph.conf"
monmaptool --create --addv a "[v1:127.0.0.1:$MON_PORT]" --fsid "$FSID" "$D/monmap" >/dev/null
ceph-authtool --create-keyring "$D/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring "$D/keyring" --gen-key -n client.admin \
  --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
ceph-authtool "$D/keyring" --gen-key -n client.rgw.s3 --cap mon 'allow rw' --cap osd 'allow rwx' >/dev/null
ceph-authtool "$D/mon.keyring" --import-keyring "$D/keyring" >/dev/null
ceph-mon $C --mkfs -i a --monmap "$D/monmap" --keyring "$D/mon.keyring"
ceph-mon $C -i a
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
ID=$(ceph $C osd new "$OSD_UUID")
mkdir -p "$D/osd/ceph-$ID"
ceph-authtool --create-keyring "$D/osd/ceph-$ID/keyring" --gen-key -n "osd.$ID" >/dev/null
ceph $C auth add "osd.$ID" osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' \
  -i "$D/osd/ceph-$ID/keyring" 2>/dev/null
ceph-osd $C -i "$ID" --mkfs --no-mon-config --osd-uuid "$OSD_UUID" 2>>"$D/log/mkfs.log"
ceph $C osd crush add-bucket host1 host >/dev/null 2>&1
ceph $C osd crush move host1 root=default >/dev/null 2>&1
ceph $C osd crush add "osd.$ID" 1.0 host=host1 >/dev/null 2>&1
ceph-osd $C -i "$ID"
radosgw $C -n client.rgw.s3
for _ in $(seq 1 240); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break
  sleep 0.5
done
radosgw-admin $C user create --uid=test --display-name=test \
  --access-key="${S3_ACCESS_KEY:?}" --secret-key="${S3_SECRET_KEY:?}" >/dev/null
