/*
 * prove.cpp — migrate_test(script): up, down, up again, inside a
 * subtransaction that is always rolled back, comparing a catalog fingerprint
 * after each step: down must restore the schema exactly, and up must
 * reproduce what it made the first time.  The fingerprint is what pg_dump -s
 * shows (kFingerprint); ALTER TYPE ... ADD VALUE counts as committed for the
 * statements after it, as in a real apply, without letting the value outlive
 * the test (run_script).
 */
#include "classify.hpp"
#include "pg/compat.hpp"
#include "runner.hpp"
#include "derive.hpp"
#include "pg/core_bridge.hpp"
#include "pg/guard.hpp"
#include "pg/privileged.hpp"
#include "pg/subxact.hpp"
#include "policy/policy.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "access/relation.h"
#include "access/genam.h"
#include "parser/parse_type.h"
#include "parser/parsetree.h"
#include "tcop/utility.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/typcache.h"
#include "access/htup_details.h"
#include "nodes/plannodes.h"
#include "utils/syscache.h"
#include "nodes/makefuncs.h"
#include "catalog/pg_attribute.h"
#include "commands/prepare.h"
#include "storage/lock.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
}

namespace safe_migrate::runner {

/*
 * One line per schema object and property, for what `pg_dump -s` shows of
 * the user's schemas: relations with their columns (in order: position,
 * type, collation, nullability, defaults, identity, generation, storage,
 * compression, statistics targets, options), constraints (of tables and of
 * domains), indexes (clustered, replica identity), views' definitions,
 * sequences and their ownership, functions, procedures and aggregates (their
 * full definition), triggers and rules (and whether enabled), row-level
 * security (enabled, forced, policies), replica identity, reloptions,
 * inheritance and partitioning, types (enum labels in order, domains,
 * composites, ranges, base types), collations, statistics objects,
 * publications, event triggers, default privileges, operators, casts,
 * languages, foreign-data wrappers, servers, foreign tables' options and user
 * mappings, text search
 * objects, comments, owners and privileges.  Extension members are the
 * extension's (one line for the extension), as pg_dump has it.  Names are
 * schema-qualified (the query runs with search_path pinned).
 */
const char *kFingerprint = R"SQL(WITH ns AS (
  SELECT n.oid, n.nspname FROM pg_catalog.pg_namespace n
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'safe_migrate', 'pg_toast')
     AND n.nspname !~ '^pg_(temp|toast_temp)_'
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                      WHERE e.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
                        AND e.objid = n.oid AND e.deptype = 'e')
), ext AS (
  SELECT e.classid, e.objid FROM pg_catalog.pg_depend e WHERE e.deptype = 'e'
), rel AS (
  SELECT c.* FROM pg_catalog.pg_class c JOIN ns ON ns.oid = c.relnamespace
   WHERE NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                         AND ext.objid = c.oid)
), typ AS (
  SELECT t.* FROM pg_catalog.pg_type t JOIN ns ON ns.oid = t.typnamespace
   WHERE NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_catalog.pg_type'::pg_catalog.regclass
                                         AND ext.objid = t.oid)
     AND (t.typrelid = 0 OR (SELECT r.relkind FROM pg_catalog.pg_class r WHERE r.oid = t.typrelid) = 'c')
     AND NOT (t.typelem <> 0 AND EXISTS (SELECT 1 FROM pg_catalog.pg_type el
                                         WHERE el.oid = t.typelem AND el.typarray = t.oid))
), pro AS (
  SELECT p.* FROM pg_catalog.pg_proc p JOIN ns ON ns.oid = p.pronamespace
   WHERE NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                                         AND ext.objid = p.oid)
), lines AS (
 SELECT pg_catalog.format('schema %I owner %s%s', n.nspname, pg_catalog.pg_get_userbyid(n.nspowner),
        coalesce(' acl ' || NULLIF(coalesce((SELECT pg_catalog.string_agg(x::text, ',' ORDER BY x::text) FROM pg_catalog.unnest(n.nspacl) x WHERE n.nspacl IS NOT NULL AND NOT (n.nspacl @> pg_catalog.acldefault('n', n.nspowner) AND n.nspacl <@ pg_catalog.acldefault('n', n.nspowner))), '-'), '-'), '')) AS line
   FROM pg_catalog.pg_namespace n JOIN ns ON ns.oid = n.oid
 UNION ALL
 SELECT pg_catalog.format('extension %I schema %I version %s', x.extname, xn.nspname, x.extversion)
   FROM pg_catalog.pg_extension x JOIN pg_catalog.pg_namespace xn ON xn.oid = x.extnamespace
  WHERE x.extname <> 'safe_migrate'
 UNION ALL
 SELECT pg_catalog.concat('relation ', c.oid::pg_catalog.regclass, ' (', c.relkind, ') owner ',
        pg_catalog.pg_get_userbyid(c.relowner),
        ' acl ' || NULLIF(coalesce((SELECT pg_catalog.string_agg(x::text, ',' ORDER BY x::text) FROM pg_catalog.unnest(c.relacl) x WHERE c.relacl IS NOT NULL AND NOT (c.relacl @> pg_catalog.acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner) AND c.relacl <@ pg_catalog.acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))), '-'), '-'),
        CASE c.relpersistence WHEN 'u' THEN ' unlogged' ELSE '' END,
        ' options ' || c.reloptions::text,
        ' toast options ' || (SELECT tc.reloptions::text FROM pg_catalog.pg_class tc WHERE tc.oid = c.reltoastrelid),
        ' tablespace ' || (SELECT s.spcname FROM pg_catalog.pg_tablespace s WHERE s.oid = c.reltablespace),
        ' access method ' || (SELECT am.amname FROM pg_catalog.pg_am am WHERE am.oid = c.relam AND am.amname <> 'heap'),
        ' of type ' || CASE WHEN c.reloftype <> 0 THEN pg_catalog.format_type(c.reloftype, NULL) END,
        CASE WHEN c.relrowsecurity THEN ' row security' ELSE '' END,
        CASE WHEN c.relforcerowsecurity THEN ' forced row security' ELSE '' END,
        CASE WHEN c.relkind IN ('r', 'p', 'm') AND c.relreplident <> 'd' THEN ' replica identity ' || c.relreplident::text END,
        ' inherits (' || (SELECT pg_catalog.string_agg(i.inhparent::pg_catalog.regclass::text, ', ' ORDER BY i.inhseqno)
                            FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid AND NOT c.relispartition) || ')',
        CASE WHEN c.relkind = 'p' THEN ' partition by ' || pg_catalog.pg_get_partkeydef(c.oid) END,
        CASE WHEN c.relispartition THEN ' partition of ' || (SELECT i.inhparent::pg_catalog.regclass::text
                                                               FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid)
                                        || ' ' || pg_catalog.pg_get_expr(c.relpartbound, c.oid) END)
   FROM rel c WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
 UNION ALL
 SELECT pg_catalog.concat('column ', a.attrelid::pg_catalog.regclass, '.', pg_catalog.quote_ident(a.attname),
        ' position ', pg_catalog.row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
        ' type ', pg_catalog.format_type(a.atttypid, a.atttypmod),
        CASE WHEN a.attcollation <> t.typcollation
             THEN ' collate ' || coalesce(NULLIF(a.attcollation, 0)::pg_catalog.regcollation::text, '-') END,
        CASE WHEN a.attnotnull THEN ' not null' END,
        CASE WHEN a.attgenerated = 's' THEN ' generated ' ELSE ' default ' END
          || pg_catalog.pg_get_expr(d.adbin, d.adrelid),
        CASE a.attidentity WHEN 'a' THEN ' identity always' WHEN 'd' THEN ' identity by default' END,
        CASE WHEN NOT a.attislocal THEN ' inherited' END,
        CASE WHEN a.attstorage <> t.typstorage THEN ' storage ' || a.attstorage::text END,
        ' compression ' || NULLIF(a.attcompression::text, ''),
        CASE WHEN a.attstattarget >= 0 THEN ' statistics ' || a.attstattarget END,
        ' options ' || (SELECT pg_catalog.array_agg(ao ORDER BY ao)::text
                          FROM pg_catalog.unnest(a.attoptions) ao WHERE ao !~ '^pg_'),
        ' fdw options ' || a.attfdwoptions::text,
        ' acl ' || (SELECT pg_catalog.string_agg(x::text, ',' ORDER BY x::text) FROM pg_catalog.unnest(a.attacl) x))
   FROM pg_catalog.pg_attribute a JOIN rel c ON c.oid = a.attrelid
   JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
   LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
 UNION ALL
 SELECT pg_catalog.format('constraint %I on %s: %s%s%s', co.conname,
        CASE WHEN co.conrelid <> 0 THEN co.conrelid::pg_catalog.regclass::text
             ELSE 'domain ' || pg_catalog.format_type(co.contypid, NULL) END,
        pg_catalog.pg_get_constraintdef(co.oid),
        CASE WHEN co.conislocal THEN '' ELSE ' inherited' END,
        '')
   FROM pg_catalog.pg_constraint co
  WHERE co.conrelid IN (SELECT oid FROM rel) OR co.contypid IN (SELECT oid FROM typ)
 UNION ALL
 SELECT pg_catalog.concat('index ', pg_catalog.pg_get_indexdef(i.indexrelid),
        CASE WHEN i.indisclustered THEN ' clustered' END,
        CASE WHEN i.indisreplident THEN ' replica identity' END,
        CASE WHEN NOT i.indisvalid THEN ' invalid' END,
        ' partition of ' || (SELECT pi.inhparent::pg_catalog.regclass::text
                               FROM pg_catalog.pg_inherits pi WHERE pi.inhrelid = c.oid),
        ' tablespace ' || (SELECT s.spcname FROM pg_catalog.pg_tablespace s WHERE s.oid = c.reltablespace),
        ' statistics ' || (SELECT pg_catalog.string_agg(ia.attnum || '=' || ia.attstattarget, ',' ORDER BY ia.attnum)
                             FROM pg_catalog.pg_attribute ia WHERE ia.attrelid = c.oid AND ia.attstattarget >= 0))
   FROM pg_catalog.pg_index i JOIN rel c ON c.oid = i.indexrelid JOIN rel tc ON tc.oid = i.indrelid
 UNION ALL
 SELECT pg_catalog.format('view %s: %s', c.oid::pg_catalog.regclass, pg_catalog.pg_get_viewdef(c.oid))
   FROM rel c WHERE c.relkind IN ('v', 'm')
 UNION ALL
 SELECT pg_catalog.format('sequence %s as %s start %s increment %s min %s max %s cache %s%s%s',
        s.seqrelid::pg_catalog.regclass, pg_catalog.format_type(s.seqtypid, NULL), s.seqstart,
        s.seqincrement, s.seqmin, s.seqmax, s.seqcache, CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END,
        coalesce((SELECT pg_catalog.format(' owned by %s.%I%s', dp.refobjid::pg_catalog.regclass, oa.attname,
                                           CASE WHEN dp.deptype = 'i' THEN ' (identity)' ELSE '' END)
                    FROM pg_catalog.pg_depend dp
                    JOIN pg_catalog.pg_attribute oa ON oa.attrelid = dp.refobjid AND oa.attnum = dp.refobjsubid
                   WHERE dp.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND dp.objid = s.seqrelid
                     AND dp.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
                     AND dp.deptype IN ('a', 'i') LIMIT 1), ''))
   FROM pg_catalog.pg_sequence s JOIN rel c ON c.oid = s.seqrelid
 UNION ALL
 SELECT pg_catalog.format('%s %s.%I(%s) owner %s%s definition md5 %s',
        CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' WHEN 'w' THEN 'window function'
                       ELSE 'function' END,
        ns.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid),
        pg_catalog.pg_get_userbyid(p.proowner), coalesce(' acl ' || NULLIF(coalesce((SELECT pg_catalog.string_agg(x::text, ',' ORDER BY x::text) FROM pg_catalog.unnest(p.proacl) x WHERE p.proacl IS NOT NULL AND NOT (p.proacl @> pg_catalog.acldefault('f', p.proowner) AND p.proacl <@ pg_catalog.acldefault('f', p.proowner))), '-'), '-'), ''),
        pg_catalog.md5(CASE WHEN p.prokind = 'a'
          THEN (SELECT pg_catalog.concat_ws(' ', ag.aggkind, ag.aggnumdirectargs, ag.aggtransfn::pg_catalog.regproc,
                       ag.aggfinalfn::pg_catalog.regproc, ag.aggcombinefn::pg_catalog.regproc,
                       ag.aggserialfn::pg_catalog.regproc, ag.aggdeserialfn::pg_catalog.regproc,
                       ag.aggmtransfn::pg_catalog.regproc, ag.aggminvtransfn::pg_catalog.regproc,
                       ag.aggmfinalfn::pg_catalog.regproc, ag.aggfinalextra, ag.aggmfinalextra,
                       ag.aggfinalmodify, ag.aggmfinalmodify, ag.aggsortop::pg_catalog.regoperator,
                       pg_catalog.format_type(ag.aggtranstype, NULL), ag.aggtransspace,
                       pg_catalog.format_type(ag.aggmtranstype, NULL), ag.aggmtransspace,
                       ag.agginitval, ag.aggminitval, p.proparallel,
                       pg_catalog.pg_get_function_result(p.oid))
                  FROM pg_catalog.pg_aggregate ag WHERE ag.aggfnoid = p.oid)
          ELSE pg_catalog.pg_get_functiondef(p.oid) END))
   FROM pro p JOIN ns ON ns.oid = p.pronamespace
 UNION ALL
 SELECT pg_catalog.format('trigger %s%s', pg_catalog.pg_get_triggerdef(t.oid),
        CASE t.tgenabled WHEN 'O' THEN '' WHEN 'D' THEN ' disabled' WHEN 'R' THEN ' enabled replica'
                         ELSE ' enabled always' END)
   FROM pg_catalog.pg_trigger t JOIN rel c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal
 UNION ALL
 SELECT pg_catalog.format('rule %s%s', pg_catalog.pg_get_ruledef(r.oid),
        CASE r.ev_enabled WHEN 'O' THEN '' WHEN 'D' THEN ' disabled' WHEN 'R' THEN ' enabled replica'
                          ELSE ' enabled always' END)
   FROM pg_catalog.pg_rewrite r JOIN rel c ON c.oid = r.ev_class WHERE r.rulename <> '_RETURN'
 UNION ALL
 SELECT pg_catalog.format('policy %I on %s: %s for %s to %s%s%s', po.polname,
        po.polrelid::pg_catalog.regclass, CASE WHEN po.polpermissive THEN 'permissive' ELSE 'restrictive' END,
        CASE po.polcmd WHEN 'r' THEN 'select' WHEN 'a' THEN 'insert' WHEN 'w' THEN 'update'
                       WHEN 'd' THEN 'delete' ELSE 'all' END,
        (SELECT pg_catalog.string_agg(CASE WHEN ro = 0 THEN 'public' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(ro)) END,
                                      ', ' ORDER BY 1)
           FROM pg_catalog.unnest(po.polroles) ro),
        coalesce(' using ' || pg_catalog.pg_get_expr(po.polqual, po.polrelid), ''),
        coalesce(' with check ' || pg_catalog.pg_get_expr(po.polwithcheck, po.polrelid), ''))
   FROM pg_catalog.pg_policy po JOIN rel c ON c.oid = po.polrelid
 UNION ALL
 SELECT pg_catalog.format('type %s (%s) owner %s%s%s', pg_catalog.format_type(t.oid, NULL), t.typtype,
        pg_catalog.pg_get_userbyid(t.typowner), coalesce(' acl ' || NULLIF(coalesce((SELECT pg_catalog.string_agg(x::text, ',' ORDER BY x::text) FROM pg_catalog.unnest(t.typacl) x WHERE t.typacl IS NOT NULL AND NOT (t.typacl @> pg_catalog.acldefault('T', t.typowner) AND t.typacl <@ pg_catalog.acldefault('T', t.typowner))), '-'), '-'), ''),
        CASE t.typtype
          WHEN 'e' THEN ' labels ' || coalesce((SELECT pg_catalog.string_agg(pg_catalog.quote_literal(en.enumlabel), ', '
                                                                    ORDER BY en.enumsortorder)
                                                  FROM pg_catalog.pg_enum en WHERE en.enumtypid = t.oid), '')
          WHEN 'd' THEN pg_catalog.format(' domain over %s%s%s%s', pg_catalog.format_type(t.typbasetype, t.typtypmod),
                          CASE WHEN t.typnotnull THEN ' not null' ELSE '' END,
                          coalesce(' default ' || t.typdefault, ''),
                          CASE WHEN t.typcollation <> (SELECT bt.typcollation FROM pg_catalog.pg_type bt WHERE bt.oid = t.typbasetype)
                               THEN ' collation ' || t.typcollation::pg_catalog.regcollation::text ELSE '' END)
          WHEN 'r' THEN (SELECT pg_catalog.format(' range of %s opclass %s collation %s canonical %s subdiff %s',
                                  pg_catalog.format_type(rg.rngsubtype, NULL), (SELECT pg_catalog.format('%I.%I', opn.nspname, opc.opcname) FROM pg_catalog.pg_opclass opc JOIN pg_catalog.pg_namespace opn ON opn.oid = opc.opcnamespace WHERE opc.oid = rg.rngsubopc),
                                  coalesce(NULLIF(rg.rngcollation, 0)::pg_catalog.regcollation::text, '-'), rg.rngcanonical::pg_catalog.regproc, rg.rngsubdiff::pg_catalog.regproc)
                           FROM pg_catalog.pg_range rg WHERE rg.rngtypid = t.oid)
          WHEN 'b' THEN pg_catalog.format(' input %s output %s receive %s send %s typmod in %s typmod out %s analyze %s'
                          ' subscript %s length %s by value %s align %s storage %s category %s preferred %s'
                          ' delimiter %s element %s default %s collatable %s',
                          t.typinput::pg_catalog.regproc, t.typoutput::pg_catalog.regproc, t.typreceive::pg_catalog.regproc,
                          t.typsend::pg_catalog.regproc, t.typmodin::pg_catalog.regproc, t.typmodout::pg_catalog.regproc,
                          t.typanalyze::pg_catalog.regproc, t.typsubscript::pg_catalog.regproc, t.typlen, t.typbyval,
                          t.typalign, t.typstorage, t.typcategory, t.typispreferred, t.typdelim,
                          t.typelem::pg_catalog.regtype, coalesce(t.typdefault, '-'), t.typcollation <> 0)
          ELSE '' END)
   FROM typ t
 UNION ALL
 SELECT pg_catalog.format('collation %s provider %s collate %s ctype %s locale %s deterministic %s owner %s',
        co.oid::pg_catalog.regcollation, co.collprovider, coalesce(co.collcollate, '-'),
        coalesce(co.collctype, '-'), coalesce(co.)SQL" SM_COLLATION_LOCALE R"SQL(, '-'), co.collisdeterministic,
        pg_catalog.pg_get_userbyid(co.collowner))
   FROM pg_catalog.pg_collation co JOIN ns ON ns.oid = co.collnamespace
  WHERE NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_catalog.pg_collation'::pg_catalog.regclass
                                        AND ext.objid = co.oid)
 UNION ALL
 SELECT pg_catalog.format('statistics %s target %s owner %s', pg_catalog.pg_get_statisticsobjdef(s.oid),
        s.stxstattarget, pg_catalog.pg_get_userbyid(s.stxowner))
   FROM pg_catalog.pg_statistic_ext s JOIN ns ON ns.oid = s.stxnamespace
 UNION ALL
 SELECT pg_catalog.format('publication %I owner %s all tables %s insert %s update %s delete %s truncate %s via root %s',
        pu.pubname, pg_catalog.pg_get_userbyid(pu.pubowner), pu.puballtables, pu.pubinsert, pu.pubupdate,
        pu.pubdelete, pu.pubtruncate, pu.pubviaroot)
   FROM pg_catalog.pg_publication pu
 UNION ALL
 SELECT pg_catalog.format('publication %I table %s columns %s where %s', pu.pubname,
        pr.prrelid::pg_catalog.regclass, coalesce(pr.prattrs::text, '-'),
        coalesce(pg_catalog.pg_get_expr(pr.prqual, pr.prrelid), '-'))
   FROM pg_catalog.pg_publication_rel pr JOIN pg_catalog.pg_publication pu ON pu.oid = pr.prpubid
 UNION ALL
 SELECT pg_catalog.format('publication %I tables in schema %I', pu.pubname, pn.nspname)
   FROM pg_catalog.pg_publication_namespace pns JOIN pg_catalog.pg_publication pu ON pu.oid = pns.pnpubid
   JOIN pg_catalog.pg_namespace pn ON pn.oid = pns.pnnspid
 UNION ALL
 SELECT pg_catalog.format('event trigger %I on %s tags %s function %s enabled %s owner %s', et.evtname, et.evtevent,
        coalesce(et.evttags::text, '-'), et.evtfoid::pg_catalog.regprocedure, et.evtenabled,
        pg_catalog.pg_get_userbyid(et.evtowner))
   FROM pg_catalog.pg_event_trigger et
  WHERE NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_catalog.pg_event_trigger'::pg_catalog.regclass
                                        AND ext.objid = et.oid)
 UNION ALL
 SELECT pg_catalog.format('default privileges of %s in %s on %s: %s', pg_catalog.pg_get_userbyid(da.defaclrole),
        coalesce((SELECT pg_catalog.quote_ident(dn.nspname) FROM pg_catalog.pg_namespace dn
                   WHERE dn.oid = da.defaclnamespace), 'all schemas'),
        da.defaclobjtype, (SELECT pg_catalog.string_agg(x::text, ',' ORDER BY x::text) FROM pg_catalog.unnest(da.defaclacl) x))
   FROM pg_catalog.pg_default_acl da
 UNION ALL
 SELECT pg_catalog.format('operator %s function %s commutator %s negator %s restrict %s join %s hashes %s merges %s owner %s',
        o.oid::pg_catalog.regoperator, o.oprcode::pg_catalog.regproc, o.oprcom::pg_catalog.regoperator,
        o.oprnegate::pg_catalog.regoperator, o.oprrest::pg_catalog.regproc, o.oprjoin::pg_catalog.regproc,
        o.oprcanhash, o.oprcanmerge, pg_catalog.pg_get_userbyid(o.oprowner))
   FROM pg_catalog.pg_operator o JOIN ns ON ns.oid = o.oprnamespace
  WHERE NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_catalog.pg_operator'::pg_catalog.regclass
                                        AND ext.objid = o.oid)
 UNION ALL
 SELECT pg_catalog.format('cast %s function %s context %s method %s', pg_catalog.pg_describe_object(ca.tableoid, ca.oid, 0),
        ca.castfunc::pg_catalog.regprocedure, ca.castcontext, ca.castmethod)
   FROM pg_catalog.pg_cast ca
  WHERE ca.oid >= 16384
    AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_catalog.pg_cast'::pg_catalog.regclass
                                        AND ext.objid = ca.oid)
 UNION ALL
 SELECT pg_catalog.format('language %I trusted %s handler %s inline %s validator %s owner %s%s', l.lanname,
        l.lanpltrusted, l.lanplcallfoid::pg_catalog.regprocedure, l.laninline::pg_catalog.regprocedure,
        l.lanvalidator::pg_catalog.regprocedure, pg_catalog.pg_get_userbyid(l.lanowner), coalesce(' acl ' || NULLIF(coalesce((SELECT pg_catalog.string_agg(x::text, ',' ORDER BY x::text) FROM pg_catalog.unnest(l.lanacl) x WHERE l.lanacl IS NOT NULL AND NOT (l.lanacl @> pg_catalog.acldefault('l', l.lanowner) AND l.lanacl <@ pg_catalog.acldefault('l', l.lanowner))), '-'), '-'), ''))
   FROM pg_catalog.pg_language l
  WHERE l.oid >= 16384
    AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_catalog.pg_language'::pg_catalog.regclass
                                        AND ext.objid = l.oid)
 UNION ALL
 SELECT pg_catalog.format('foreign-data wrapper %I handler %s validator %s options %s owner %s%s', w.fdwname,
        w.fdwhandler::pg_catalog.regprocedure, w.fdwvalidator::pg_catalog.regprocedure,
        coalesce(w.fdwoptions::text, '-'), pg_catalog.pg_get_userbyid(w.fdwowner), coalesce(' acl ' || NULLIF(coalesce((SELECT pg_catalog.string_agg(x::text, ',' ORDER BY x::text) FROM pg_catalog.unnest(w.fdwacl) x WHERE w.fdwacl IS NOT NULL AND NOT (w.fdwacl @> pg_catalog.acldefault('F', w.fdwowner) AND w.fdwacl <@ pg_catalog.acldefault('F', w.fdwowner))), '-'), '-'), ''))
   FROM pg_catalog.pg_foreign_data_wrapper w
  WHERE NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_catalog.pg_foreign_data_wrapper'::pg_catalog.regclass
                                        AND ext.objid = w.oid)
 UNION ALL
 SELECT pg_catalog.format('server %I wrapper %I type %s version %s options %s owner %s%s', s.srvname,
        (SELECT w.fdwname FROM pg_catalog.pg_foreign_data_wrapper w WHERE w.oid = s.srvfdw),
        coalesce(s.srvtype, '-'), coalesce(s.srvversion, '-'), coalesce(s.srvoptions::text, '-'),
        pg_catalog.pg_get_userbyid(s.srvowner), coalesce(' acl ' || NULLIF(coalesce((SELECT pg_catalog.string_agg(x::text, ',' ORDER BY x::text) FROM pg_catalog.unnest(s.srvacl) x WHERE s.srvacl IS NOT NULL AND NOT (s.srvacl @> pg_catalog.acldefault('S', s.srvowner) AND s.srvacl <@ pg_catalog.acldefault('S', s.srvowner))), '-'), '-'), ''))
   FROM pg_catalog.pg_foreign_server s
  WHERE NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_catalog.pg_foreign_server'::pg_catalog.regclass
                                        AND ext.objid = s.oid)
 UNION ALL
 SELECT pg_catalog.format('foreign table %s server %I options %s', ft.ftrelid::pg_catalog.regclass,
        (SELECT s.srvname FROM pg_catalog.pg_foreign_server s WHERE s.oid = ft.ftserver),
        coalesce(ft.ftoptions::text, '-'))
   FROM pg_catalog.pg_foreign_table ft JOIN rel c ON c.oid = ft.ftrelid
 UNION ALL
 SELECT pg_catalog.format('user mapping for %s server %I options %s', um.usename, um.srvname,
        coalesce(um.umoptions::text, '-'))
   FROM pg_catalog.pg_user_mappings um
 UNION ALL
 SELECT pg_catalog.format('text search configuration %s parser %s owner %s mapping %s',
        cfg.oid::pg_catalog.regconfig, cfg.cfgparser::pg_catalog.regclass, pg_catalog.pg_get_userbyid(cfg.cfgowner),
        coalesce((SELECT pg_catalog.string_agg(m.maptokentype || ':' || m.mapseqno || ':' || m.mapdict::pg_catalog.regdictionary::text,
                                               ',' ORDER BY m.maptokentype, m.mapseqno)
                    FROM pg_catalog.pg_ts_config_map m WHERE m.mapcfg = cfg.oid), '-'))
   FROM pg_catalog.pg_ts_config cfg JOIN ns ON ns.oid = cfg.cfgnamespace
  WHERE NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_catalog.pg_ts_config'::pg_catalog.regclass
                                        AND ext.objid = cfg.oid)
 UNION ALL
 SELECT pg_catalog.format('text search dictionary %s template %s options %s owner %s', di.oid::pg_catalog.regdictionary,
        di.dicttemplate, coalesce(di.dictinitoption, '-'), pg_catalog.pg_get_userbyid(di.dictowner))
   FROM pg_catalog.pg_ts_dict di JOIN ns ON ns.oid = di.dictnamespace
  WHERE NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_catalog.pg_ts_dict'::pg_catalog.regclass
                                        AND ext.objid = di.oid)
 UNION ALL
 SELECT pg_catalog.format('comment on %s: %s', pg_catalog.pg_describe_object(d.classoid, d.objoid, d.objsubid),
        d.description)
   FROM pg_catalog.pg_description d
  WHERE (d.objoid >= 16384 OR (d.classoid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND d.objoid = 2200))
    AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = d.classoid AND ext.objid = d.objoid)
    AND d.classoid <> 'pg_catalog.pg_database'::pg_catalog.regclass
    AND NOT (d.classoid = 'pg_catalog.pg_extension'::pg_catalog.regclass
             AND d.objoid = (SELECT x.oid FROM pg_catalog.pg_extension x WHERE x.extname = 'safe_migrate'))
 UNION ALL
 -- every other object a user made (operator classes and families and their
 -- members, conversions, transforms, access methods, text search parsers and
 -- templates, ...): its existence
 SELECT pg_catalog.format('object %s', pg_catalog.pg_describe_object(o.classid, o.objid, 0))
   FROM (SELECT 'pg_catalog.pg_opclass'::pg_catalog.regclass AS classid, oid AS objid FROM pg_catalog.pg_opclass
         UNION ALL SELECT 'pg_catalog.pg_opfamily'::pg_catalog.regclass, oid FROM pg_catalog.pg_opfamily
         -- members of a family an extension made are the extension's too
         UNION ALL SELECT 'pg_catalog.pg_amop'::pg_catalog.regclass, a.oid FROM pg_catalog.pg_amop a
                    WHERE NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_catalog.pg_opfamily'::pg_catalog.regclass
                                                          AND ext.objid = a.amopfamily)
         UNION ALL SELECT 'pg_catalog.pg_amproc'::pg_catalog.regclass, a.oid FROM pg_catalog.pg_amproc a
                    WHERE NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_catalog.pg_opfamily'::pg_catalog.regclass
                                                          AND ext.objid = a.amprocfamily)
         UNION ALL SELECT 'pg_catalog.pg_conversion'::pg_catalog.regclass, oid FROM pg_catalog.pg_conversion
         UNION ALL SELECT 'pg_catalog.pg_transform'::pg_catalog.regclass, oid FROM pg_catalog.pg_transform
         UNION ALL SELECT 'pg_catalog.pg_am'::pg_catalog.regclass, oid FROM pg_catalog.pg_am
         UNION ALL SELECT 'pg_catalog.pg_ts_parser'::pg_catalog.regclass, oid FROM pg_catalog.pg_ts_parser
         UNION ALL SELECT 'pg_catalog.pg_ts_template'::pg_catalog.regclass, oid FROM pg_catalog.pg_ts_template) o
  WHERE o.objid >= 16384
    AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = o.classid AND ext.objid = o.objid)
)
SELECT line FROM lines ORDER BY line)SQL";

List *fingerprint(void)
{
    int nest = pg::pin_search_path();
    if (SPI_execute(kFingerprint, false, 0) != SPI_OK_SELECT)
        elog(ERROR, "could not take the catalog fingerprint");
    pg::unpin_search_path(nest);
    List *lines = NIL;
    for (uint64 i = 0; i < SPI_processed; i++)
        lines = lappend(lines, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
    return lines;
}

bool contains(List *lines, const char *line)
{
    ListCell *lc;
    foreach (lc, lines)
        if (strcmp((char *) lfirst(lc), line) == 0)
            return true;
    return false;
}

/* "missing: ..." for lines of `want` not in `got`, "extra: ..." the other way */
List *differences(List *want, List *got, const char *missing, const char *extra)
{
    List *out = NIL;
    ListCell *lc;
    foreach (lc, want)
        if (!contains(got, (char *) lfirst(lc)))
            out = lappend(out, psprintf("%s %s", missing, (char *) lfirst(lc)));
    foreach (lc, got)
        if (!contains(want, (char *) lfirst(lc)))
            out = lappend(out, psprintf("%s %s", extra, (char *) lfirst(lc)));
    return out;
}

/*
 * ALTER TYPE ... ADD VALUE as a real apply runs it.
 *
 * The runner gives ADD VALUE a transaction of its own (classify.cpp): the
 * statements after it, and the down script, run once the value committed and
 * may use it.  Inside the test's transaction PostgreSQL refuses to use a value
 * added by a transaction that has not committed ("unsafe use of new value"),
 * because a rolled-back value that got into an index would leave the index
 * pointing at an enum value that no longer exists.  The test reproduces the
 * commit for what PostgreSQL tracks (the backend's list of uncommitted enum
 * values, pg_enum.c): after each ADD VALUE of the script it forgets the
 * test's values, keeping those the caller's own transaction added before the
 * test (saved when the test began, restored when it ends).  What the commit
 * protects against is then kept from happening: while such a value is usable,
 * a write (INSERT, UPDATE, MERGE, COPY FROM, also from triggers and
 * functions) into a table whose index existed before the test and stores that
 * enum type (directly, through a domain, array, composite or range) is
 * refused; an index built or rewritten inside the test disappears with it.
 */
namespace {
struct EnumCommit {
    bool active = false;          /* a test is running */
    List *types = NIL;            /* enum types the test added values to */
    void *saved = nullptr;        /* the caller's uncommitted values */
    SubTransactionId first = InvalidSubTransactionId; /* the test's subtransaction */
};
EnumCommit enum_commit;
ExecutorStart_hook_type prev_executor_start = nullptr;
ProcessUtility_hook_type prev_process_utility_hook = nullptr;
bool hooks_installed = false;

bool type_holds(Oid type, int depth)
{
    if (depth > 32 || !OidIsValid(type))
        return false;
    type = getBaseType(type);
    if (list_member_oid(enum_commit.types, type))
        return true;
    Oid elem = get_element_type(type);
    if (OidIsValid(elem))
        return type_holds(elem, depth + 1);
    if (type_is_range(type))
        return type_holds(get_range_subtype(type), depth + 1);
    if (type_is_multirange(type))
        return type_holds(get_multirange_range(type), depth + 1);
    Oid relid = get_typ_typrelid(type);
    if (OidIsValid(relid)) {
        for (AttrNumber a = 1;; a++) {
            HeapTuple tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid), Int16GetDatum(a));
            if (!HeapTupleIsValid(tup))
                break;
            Form_pg_attribute att = (Form_pg_attribute) GETSTRUCT(tup);
            Oid atttype = att->attisdropped ? InvalidOid : att->atttypid;
            ReleaseSysCache(tup);
            if (type_holds(atttype, depth + 1))
                return true;
        }
    }
    return false;
}

bool made_in_test(SubTransactionId id)
{
    return id != InvalidSubTransactionId && id >= enum_commit.first;
}

/* A value an UPDATE writes: a constant that is not an enum value the test
 * added (NULL, or one committed before the test) cannot carry a new value
 * into an index; anything else (an expression, a column of another row) may. */
bool harmless_new_value(Expr *expr)
{
    while (expr != nullptr && (IsA(expr, CoerceToDomain) || IsA(expr, RelabelType))) {
        if (IsA(expr, CoerceToDomain))
            expr = ((CoerceToDomain *) expr)->arg;
        else
            expr = ((RelabelType *) expr)->arg;
    }
    if (expr == nullptr || !IsA(expr, Const))
        return false;
    Const *c = (Const *) expr;
    if (c->constisnull)
        return true;
    if (!type_is_enum(getBaseType(c->consttype)))
        return false;
    HeapTuple tup = SearchSysCache1(ENUMOID, c->constvalue);
    if (!HeapTupleIsValid(tup))
        return false;
    bool made_now = TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(tup->t_data));
    ReleaseSysCache(tup);
    return !made_now;
}

/* What an UPDATE of a result relation writes: the columns it sets, and the
 * expressions it sets them to (the subplan's non-junk entries, in order). */
struct UpdateWrite {
    List *colnos = NIL;
    List *values = NIL;
};

/* Refuse a write into relid (and its partitions) that could put a value the
 * test made usable into an index that outlives the test.  For an UPDATE
 * (update != nullptr) a stored column it does not set keeps its committed
 * value, and one it sets to a harmless constant gets no new value; unless a
 * BEFORE UPDATE trigger may change any column. */
void guard_write(Oid relid, const UpdateWrite *update)
{
    List *rels = get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE
                     ? find_all_inheritors(relid, RowExclusiveLock, nullptr)
                     : list_make1_oid(relid);
    ListCell *lc;
    foreach (lc, rels) {
        Relation rel = relation_open(lfirst_oid(lc), RowExclusiveLock);
        List *indexes = RelationGetIndexList(rel);
        bool table_new = made_in_test(rel->rd_createSubid);
        bool triggers = rel->trigdesc != nullptr && rel->trigdesc->trig_update_before_row;
        ListCell *ic;
        foreach (ic, indexes) {
            Relation idx = index_open(lfirst_oid(ic), RowExclusiveLock);
            bool index_new = table_new || made_in_test(idx->rd_createSubid) ||
                             made_in_test(pg::compat::new_file_subid(idx));
            TupleDesc desc = RelationGetDescr(idx);
            for (int i = 0; !index_new && i < desc->natts; i++) {
                Oid type = TupleDescAttr(desc, i)->atttypid;
                if (!type_holds(type, 0))
                    continue;
                AttrNumber heap_att = idx->rd_index->indkey.values[i];
                if (update != nullptr && !triggers && heap_att > 0 &&
                    TupleDescAttr(RelationGetDescr(rel), heap_att - 1)->attgenerated == '\0') {
                    int pos = -1;
                    ListCell *cc;
                    foreach (cc, update->colnos)
                        if (lfirst_int(cc) == heap_att)
                            pos = foreach_current_index(cc);
                    if (pos < 0)
                        continue; /* not set: keeps its committed value */
                    if (pos < list_length(update->values) &&
                        harmless_new_value((Expr *) list_nth(update->values, pos)))
                        continue;
                }
                char *table = pstrdup(RelationGetRelationName(rel));
                char *index = pstrdup(RelationGetRelationName(idx));
                char *tname = format_type_be(type);
                ereport(ERROR,
                        (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                         errmsg("migrate_test cannot write into table \"%s\" once the migration "
                                "added a value to an enum type its index \"%s\" stores (%s)",
                                table, index, tname),
                         errdetail("A real apply commits ALTER TYPE ... ADD VALUE before the next "
                                   "statement; the test makes the value usable without that "
                                   "commit, and an index entry carrying it would outlive the "
                                   "test's rollback."),
                         errhint("Test the migration on a copy of the database with "
                                 "migrate_apply and migrate_rollback.")));
            }
            index_close(idx, NoLock);
        }
        relation_close(rel, NoLock);
    }
}

void guard_executor_start(QueryDesc *desc, int eflags)
{
    PlannedStmt *ps = desc->plannedstmt;
    /* (a DELETE writes no index entry) */
    if (enum_commit.active && enum_commit.types != NIL && !(eflags & EXEC_FLAG_EXPLAIN_ONLY) &&
        !(ps->commandType == CMD_DELETE && !ps->hasModifyingCTE)) {
        ModifyTable *mt = ps->commandType == CMD_UPDATE && !ps->hasModifyingCTE &&
                                  ps->planTree != nullptr && IsA(ps->planTree, ModifyTable)
                              ? (ModifyTable *) ps->planTree
                              : nullptr;
        if (mt != nullptr && outerPlan(mt) != nullptr &&
            list_length(mt->updateColnosLists) == list_length(mt->resultRelations)) {
            UpdateWrite update;
            ListCell *tc;
            foreach (tc, outerPlan(mt)->targetlist) {
                TargetEntry *tle = lfirst_node(TargetEntry, tc);
                if (!tle->resjunk)
                    update.values = lappend(update.values, tle->expr);
            }
            ListCell *lc;
            foreach (lc, mt->resultRelations) {
                RangeTblEntry *rte = rt_fetch(lfirst_int(lc), ps->rtable);
                update.colnos = (List *) list_nth(mt->updateColnosLists, foreach_current_index(lc));
                if (rte->rtekind == RTE_RELATION)
                    guard_write(rte->relid, &update);
            }
        } else {
            ListCell *lc;
            foreach (lc, ps->resultRelations) {
                RangeTblEntry *rte = rt_fetch(lfirst_int(lc), ps->rtable);
                if (rte->rtekind == RTE_RELATION)
                    guard_write(rte->relid, nullptr);
            }
        }
    }
    if (prev_executor_start)
        prev_executor_start(desc, eflags);
    else
        standard_ExecutorStart(desc, eflags);
}

/* The enum type named: one the test added a value to. */
void record_enum_type(List *type_name)
{
    Oid type = LookupTypeNameOid(nullptr, makeTypeNameFromNameList(type_name), true);
    if (!OidIsValid(type))
        return; /* the statement itself says it does not exist */
    MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
    enum_commit.types = list_append_unique_oid(enum_commit.types, type);
    MemoryContextSwitchTo(old);
}

void guard_process_utility(PlannedStmt *pstmt, const char *query, bool read_only,
                           ProcessUtilityContext context, ParamListInfo params,
                           QueryEnvironment *env, DestReceiver *dest, QueryCompletion *qc)
{
    /* ADD VALUE at any depth (a DO block, a function): forgetting the
     * test's uncommitted values at the next top-level ADD VALUE forgets
     * this one too, so its type is guarded as well */
    if (enum_commit.active && IsA(pstmt->utilityStmt, AlterEnumStmt)) {
        AlterEnumStmt *alter = (AlterEnumStmt *) pstmt->utilityStmt;
        if (alter->newVal != nullptr && alter->oldVal == nullptr)
            record_enum_type(alter->typeName);
    }
    if (enum_commit.active && enum_commit.types != NIL && IsA(pstmt->utilityStmt, CopyStmt)) {
        CopyStmt *copy = (CopyStmt *) pstmt->utilityStmt;
        if (copy->is_from && copy->relation != nullptr)
            guard_write(RangeVarGetRelid(copy->relation, RowExclusiveLock, false), nullptr);
    }
    if (prev_process_utility_hook)
        prev_process_utility_hook(pstmt, query, read_only, context, params, env, dest, qc);
    else
        standard_ProcessUtility(pstmt, query, read_only, context, params, env, dest, qc);
}

/* Forget the test's uncommitted enum values, keep the caller's. */
void forget_test_enum_values(void)
{
    AtEOXact_Enum();
    if (enum_commit.saved != nullptr)
        RestoreUncommittedEnums(enum_commit.saved);
}
}  // namespace

void begin_enum_commit(void)
{
    if (!hooks_installed) {
        prev_executor_start = ExecutorStart_hook;
        ExecutorStart_hook = guard_executor_start;
        prev_process_utility_hook = ProcessUtility_hook;
        ProcessUtility_hook = guard_process_utility;
        hooks_installed = true;
    }
    Size size = EstimateUncommittedEnumsSpace();
    enum_commit.saved = palloc0(size);
    SerializeUncommittedEnums(enum_commit.saved, size);
    enum_commit.types = NIL;
    enum_commit.first = GetCurrentSubTransactionId();
    enum_commit.active = true;
}

/* The test is over (its subtransaction rolled back or about to be). */
void end_enum_commit(void)
{
    if (!enum_commit.active)
        return;
    enum_commit.active = false;
    if (enum_commit.types != NIL)
        forget_test_enum_values();
    enum_commit.types = NIL;
    enum_commit.saved = nullptr;
}

/* Run one phase (up, down, up again) of the test, judged as migrate_apply
 * (or migrate_rollback) judges it: rows changed are counted per transaction
 * the real run would use (the phase, and a statement that runs in a
 * transaction of its own unless the section was wrapped in BEGIN; ...
 * COMMIT;), after each statement; the verdicts that belong to the end of a
 * migration (foreign-key-missing-index) come after its last statement. */
void run_script(const char *sql, bool one_transaction)
{
    List *trees = runner::parse_script(sql, "script");
    /* nothing of an earlier phase counts toward this one */
    policy::forget_changed_rows();
    policy::forget_migration_checks();
    ListCell *lc;
    foreach (lc, trees) {
        RawStmt *raw = lfirst_node(RawStmt, lc);
        char *text = statement_text(sql, raw);
        bool own_transaction = !one_transaction && runner::classify_statement(raw) ==
                                                          core::TxClass::OwnTransaction;
        if (own_transaction)
            policy::forget_changed_rows();
        policy::migration.statement = text;
        if (SPI_execute(text, false, 0) < 0)
            elog(ERROR, "could not run: %s", text);
        policy::check_large_dml(raw, (double) SPI_processed);
        if (own_transaction)
            policy::forget_changed_rows();
        if (enum_commit.active && IsA(raw->stmt, AlterEnumStmt) &&
            ((AlterEnumStmt *) raw->stmt)->newVal != nullptr &&
            ((AlterEnumStmt *) raw->stmt)->oldVal == nullptr) {
            /* the runner commits it here: so does the test (see above) */
            record_enum_type(((AlterEnumStmt *) raw->stmt)->typeName);
            forget_test_enum_values();
        }
    }
    policy::migration.statement = nullptr;
    policy::finish_migration_checks();
}

/* Parse one section of the script under test (syntax errors point into it)
 * and refuse what cannot run inside the test's transaction.  A statement that
 * only wants a transaction of its own (a wait for a backfill, ALTER TYPE ...
 * ADD VALUE) runs in the test's; ADD VALUE then counts as committed, as in a
 * real apply (run_script). */
void check_testable(const char *sql, const char *what)
{
    List *trees = runner::parse_script(sql, what);
    ListCell *lc;
    foreach (lc, trees) {
        RawStmt *stmt = lfirst_node(RawStmt, lc);
        int number = foreach_current_index(lc) + 1;
        core::TxClass cls = runner::classify_statement(stmt);
        if (cls == core::TxClass::Forbidden)
            ereport(ERROR,
                    (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                     errmsg("statement %d of the %s: %s", number, what,
                            runner::forbidden_reason(stmt)),
                     errdetail("Statement: %s", runner::statement_text(sql, stmt)),
                     errhint("migrate_test runs the migration inside one transaction it rolls "
                             "back; remove BEGIN/COMMIT and load data with INSERT or COPY FROM a "
                             "server file.")));
        if (cls == core::TxClass::NonTransactional)
            ereport(ERROR,
                    (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                     errmsg("migrate_test runs a migration inside a transaction it rolls back"),
                     errdetail("Statement \"%s\" cannot run inside a transaction block.",
                               runner::statement_text(sql, stmt)),
                     errhint("Test the migration's transactional part, or test it on a copy of "
                             "the database with migrate_apply and migrate_rollback.")));
    }
}

/* Run a script in a subtransaction of its own; its error message, or NULL.
 * The down and up-again steps really run after the up committed: what the
 * earlier steps created is judged by the policy as existing, not as new
 * (a rollback that drops a table the up created meets ban-drop-table). */
char *try_script(const char *sql, bool one_transaction)
{
    ErrorData *failure = pg::in_subtransaction([sql, one_transaction]() {
        policy::new_objects_from = GetCurrentSubTransactionId();
        /* a real rollback or re-apply runs in another session: without the
         * temporary objects of this one (the up's, the caller's); dropped
         * here, they come back with the test's rollback */
        ResetTempTableNamespace();
        run_script(sql, one_transaction);
    });
    policy::new_objects_from = InvalidSubTransactionId;
    return failure ? failure->message : nullptr;
}

Datum text_array(List *items)
{
    int n = list_length(items);
    Datum *elems = (Datum *) palloc(sizeof(Datum) * (n + 1));
    for (int i = 0; i < n; i++)
        elems[i] = CStringGetTextDatum((char *) list_nth(items, i));
    return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

}  // namespace safe_migrate::runner

using namespace safe_migrate;

/* migrate_test(script) returns setof (step, ok, differences) */
namespace {

/* The names the script's PREPARE statements would create that no prepared
 * statement of the session has now: PREPARE is not transactional, so a
 * test's rollback leaves them behind. */
List *new_prepared_names(const char *sql, List *names)
{
    if (sql == nullptr)
        return names;
    List *trees = safe_migrate::runner::parse_script(sql, "script");
    ListCell *lc;
    foreach (lc, trees) {
        Node *stmt = lfirst_node(RawStmt, lc)->stmt;
        if (IsA(stmt, PrepareStmt) &&
            FetchPreparedStatement(((PrepareStmt *) stmt)->name, false) == nullptr)
            names = lappend(names, pstrdup(((PrepareStmt *) stmt)->name));
    }
    return names;
}

/* What the test's rollback does not undo: prepared statements and
 * session-level advisory locks its scripts made (see
 * runner::session_holds_advisory_locks). */
void forget_test_session_state(List *prepared_names, bool release_locks)
{
    ListCell *lc;
    foreach (lc, prepared_names)
        DropPreparedStatement((const char *) lfirst(lc), false);
    if (release_locks)
        LockReleaseSession(USER_LOCKMETHOD);
}

}  // namespace

SM_ENTRY(migrate_test)
{
    runner::refuse_inside_migration("migrate_test");
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("migration script must not be null")));
    char *script = text_to_cstring(PG_GETARG_TEXT_PP(0));
    pg::PreparedScript prepared;
    const char *problem = pg::prepare_script(script, "test", &prepared);
    if (problem)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("invalid migration script: %s", problem)));
    policy::check_allowances(prepared.n_allows, prepared.allow_rules);
    runner::check_testable(prepared.up, "up section");
    /* a written down script is checked now; a derived one once up ran
     * (derive.hpp: names are resolved against the catalogs up left) */
    char *down = prepared.down;
    pg::PreparedScript down_prepared;
    memset(&down_prepared, 0, sizeof(down_prepared));
    if (down != nullptr) {
        runner::check_testable(down, "down section");
        /* the down script's directives count too */
        if (pg::prepare_script(down, "test", &down_prepared) == nullptr)
            policy::check_allowances(down_prepared.n_allows, down_prepared.allow_rules);
    }

    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
    MemoryContext cxt = CurrentMemoryContext;
    ResourceOwner owner = CurrentResourceOwner;
    List *volatile rows = NIL;
    /* (a derived down script prepares nothing) */
    List *prepared_names = new_prepared_names(prepared.up, new_prepared_names(down, NIL));
    bool release_locks = !runner::session_holds_advisory_locks();

    BeginInternalSubTransaction(nullptr);
    MemoryContextSwitchTo(cxt);
    PG_TRY();
    {
        runner::begin_enum_commit();
        SPI_connect();
        int n = prepared.n_allows + down_prepared.n_allows;
        char **rules = (char **) palloc(sizeof(char *) * (n + 1));
        char **reasons = (char **) palloc(sizeof(char *) * (n + 1));
        for (int i = 0; i < prepared.n_allows; i++) {
            rules[i] = prepared.allow_rules[i];
            reasons[i] = prepared.allow_reasons[i];
        }
        for (int i = 0; i < down_prepared.n_allows; i++) {
            rules[prepared.n_allows + i] = down_prepared.allow_rules[i];
            reasons[prepared.n_allows + i] = down_prepared.allow_reasons[i];
        }
        policy::begin_migration("migrate_test", n, rules, reasons);

        bool derived_allows = false;
        List *before = runner::fingerprint();
        runner::NameResolution *at_apply =
            prepared.down ? nullptr : runner::capture_name_resolution();
        /* an online up section's VALIDATE steps (preparing the down
         * section above reset what classification knows) */
        pg::classify_online = prepared.online;
        runner::run_script(prepared.up, prepared.up_wrapped);
        pg::classify_online = false;
        List *after_up = runner::fingerprint();
        if (down == nullptr) {
            const char *why = nullptr;
            down = runner::derive_down_script(prepared.up, at_apply, &why);
            if (down == nullptr)
                ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                                errmsg("the migration has no down script to test"),
                                errdetail("None was given, and none could be derived: %s.", why),
                                errhint("Give it a \"-- migrate:down\" section.")));
            runner::check_testable(down, "down section");
            /* The derived script's directives count too, whoever the role:
             * we wrote them, from the role's own up script, for what that
             * script made (unlike the allow lines of a written down script,
             * they are not the role's to choose).  They hold for the down
             * script only. */
            pg::PreparedScript derived;
            if (pg::prepare_script(down, "test", &derived) == nullptr && derived.n_allows > 0) {
                derived_allows = true;
                int m = prepared.n_allows + derived.n_allows;
                char **all_rules = (char **) palloc(sizeof(char *) * (m + 1));
                char **all_reasons = (char **) palloc(sizeof(char *) * (m + 1));
                for (int i = 0; i < prepared.n_allows; i++) {
                    all_rules[i] = prepared.allow_rules[i];
                    all_reasons[i] = prepared.allow_reasons[i];
                }
                for (int i = 0; i < derived.n_allows; i++) {
                    all_rules[prepared.n_allows + i] = derived.allow_rules[i];
                    all_reasons[prepared.n_allows + i] = derived.allow_reasons[i];
                }
                policy::end_migration();
                policy::begin_migration("migrate_test", m, all_rules, all_reasons);
            }
        }
        /* (a derived down script is not wrapped) */
        char *down_failed = runner::try_script(down, down == prepared.down && prepared.down_wrapped);
        List *after_down = runner::fingerprint();
        if (derived_allows) {
            policy::end_migration();
            policy::begin_migration("migrate_test", prepared.n_allows, prepared.allow_rules,
                                    prepared.allow_reasons);
        }
        char *up_again_failed =
            down_failed ? nullptr : runner::try_script(prepared.up, prepared.up_wrapped);
        List *after_up_again = runner::fingerprint();

        MemoryContext old = MemoryContextSwitchTo(cxt);
        List *d1 = runner::differences(before, after_down, "not restored by down:", "left by down:");
        List *d2 = runner::differences(after_up, after_up_again, "not made again by up:",
                                       "new the second time:");
        List *changed = runner::differences(before, after_up, "removed by up:", "added by up:");
        if (down_failed)
            d1 = lcons(psprintf("down failed: %s", down_failed), d1);
        if (up_again_failed)
            d2 = lcons(psprintf("up failed the second time: %s", up_again_failed), d2);
        else if (down_failed)
            d2 = lcons(pstrdup("not run: down failed"), d2);
        rows = list_make3(list_make2(pstrdup("up"), changed), list_make2(pstrdup("down"), d1),
                          list_make2(pstrdup("up again"), d2));
        /* copy the text out of SPI memory */
        ListCell *rc;
        foreach (rc, rows) {
            List *row = (List *) lfirst(rc);
            List *copy = NIL;
            ListCell *dc;
            foreach (dc, (List *) lsecond(row))
                copy = lappend(copy, pstrdup((char *) lfirst(dc)));
            lsecond(row) = copy;
        }
        MemoryContextSwitchTo(old);
        policy::end_migration();
        SPI_finish();
    }
    PG_CATCH();
    {
        policy::end_migration();
        MemoryContextSwitchTo(cxt);
        ErrorData *edata = CopyErrorData();
        FlushErrorState();
        RollbackAndReleaseCurrentSubTransaction();
        MemoryContextSwitchTo(cxt);
        CurrentResourceOwner = owner;
        runner::end_enum_commit();
        forget_test_session_state(prepared_names, release_locks);
        edata->context = psprintf("migrate_test%s%s", edata->context ? "\n" : "",
                                  edata->context ? edata->context : "");
        ReThrowError(edata);
    }
    PG_END_TRY();
    /* whatever happened, none of it stays */
    RollbackAndReleaseCurrentSubTransaction();
    MemoryContextSwitchTo(cxt);
    CurrentResourceOwner = owner;
    runner::end_enum_commit();
    forget_test_session_state(prepared_names, release_locks);

    ListCell *rc;
    foreach (rc, rows) {
        List *row = (List *) lfirst(rc);
        const char *step = (const char *) linitial(row);
        List *diffs = (List *) lsecond(row);
        bool ok = strcmp(step, "up") == 0 ? true : diffs == NIL;
        Datum values[3] = {CStringGetTextDatum(step), BoolGetDatum(ok), runner::text_array(diffs)};
        bool nulls[3] = {false, false, false};
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return (Datum) 0;
}
