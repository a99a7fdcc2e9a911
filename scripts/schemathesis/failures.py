"""Every distinct failure in a schemathesis NDJSON report, not only the first per check and operation that the
CLI prints: grouped by operation, check, status, the API's `error` code and the fields it names, with counts,
phases and two examples each.

    python3 scripts/schemathesis/failures.py REPORT_DIR_OR_NDJSON_FILE
"""
import base64, collections, glob, json, os, sys

path = sys.argv[1]
f = path if os.path.isfile(path) else sorted(glob.glob(os.path.join(path, "ndjson-*")))[-1]
groups=collections.OrderedDict()
for line in open(f):
    ev=json.loads(line)
    if 'ScenarioFinished' not in ev: continue
    sf=ev['ScenarioFinished']; r=sf['recorder']
    if 'checks' not in r: continue
    for cid, checks in r['checks'].items():
        for ch in checks:
            if ch.get('status')!='failure': continue
            case=r['cases'][cid]['value']
            resp=(r['interactions'].get(cid) or {}).get('response') or {}
            c=resp.get('content') or {}
            body=base64.b64decode(c['$base64']).decode('utf-8','replace') if isinstance(c,dict) and '$base64' in c else str(c)
            try:
                j=json.loads(body); code=j.get('error',''); fk=tuple(sorted(j.get('fields',{}).keys())); msgs=j.get('fields',{})
            except Exception: code=body[:40]; fk=(); msgs={}
            key=(case['method']+' '+case['path'], ch['name'], resp.get('status_code'), code, fk)
            g=groups.setdefault(key,{'n':0,'ex':[], 'phases':set()})
            g['n']+=1; g['phases'].add(sf['phase'])
            if len(g['ex'])<2: g['ex'].append(dict(path=case.get('path_parameters'),query=case.get('query'),headers=case.get('headers'),body=(json.dumps(case.get('body'))[:160] if 'body' in case else None), resp=body[:300], mode=case['meta']['generation']['mode']))
if not groups:
    print('no failures')
for k,v in groups.items():
    print(v['n'],k,sorted(v['phases']))
    for e in v['ex']: print('     ',str(e)[:700])
