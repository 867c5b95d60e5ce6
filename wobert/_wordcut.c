/* wobert._wordcut: jieba's cut with the HMM off, and bert4keras's token ids, in C.
 *
 * WordCutter(words, total) cuts text as jieba 0.42's Tokenizer.cut(text, HMM=False) does
 * with a dictionary of (word, frequency) pairs whose line frequencies sum to total:
 *
 * - A run of jieba's word characters (U+4E00-U+9FD5, ASCII letters and digits, + # & . _
 *   % -) is cut on its word graph: from each position, the dictionary words starting
 *   there (the single character where none does); the path with the highest sum of
 *   log(frequency) - log(total) wins, ties going to the longer word; consecutive
 *   single-character ASCII letters and digits on the path are joined into one piece.
 * - Any other character is a piece of its own; "\r\n" is one piece.
 *
 * with_vocab(vocab, unk_id, cls_id, sep_id, max_word_chars, char_classes, normalize,
 * normalize_table) returns a copy that also knows the vocabulary. Its encode(texts, pairs,
 * maxlen, words) gives each text's (token_ids, segment_ids) as bert4keras's Tokenizer.encode:
 *
 * - Normalization: each BMP character through normalize_table (what Python's normalize
 *   makes of it alone); a text with a character the table does not map goes through
 *   normalize itself. normalize None: no normalization (do_lower_case off).
 * - BERT's char level (words=False): char_classes (one byte per code point) sorts each
 *   character: one that stands alone (CJK, punctuation), a space, one that is dropped
 *   (controls), or one of a word. Each word goes through WordPiece: greedy longest match,
 *   "##" pieces after the first, [UNK] for a word with no pieces or longer than
 *   max_word_chars; a lone character outside the vocabulary is [UNK].
 * - The word level (words=True): a piece of the cut in the vocabulary is its own id; any
 *   other piece goes through the char level. (bert4keras normalizes such a piece again
 *   first; every character of normalized text is left as it is by normalizing again.)
 * - [CLS] first [SEP] second [SEP], cut to maxlen as bert4keras's truncate_sequences.
 *
 * tokenize(texts, words) gives the same tokens as strings (bert4keras's tokenize: a token's
 * vocabulary string, or for [UNK] the characters it stands for), and encode_words(texts,
 * words) the same ids with 1 for each token that starts a word: the first token of a piece
 * of the cut (word level), or at the char level a token other than a "##" piece whose first
 * character lies in another piece of the cut than the previous token's (whole-word masking
 * of a char tokenizer over jieba's words, with a cutter that holds jieba's dictionary).
 *
 * Each copies (and normalizes) the texts, releases the GIL while it cuts and looks up, then
 * builds the lists.
 *
 * The dictionary and the vocabulary share one trie: nodes hold a word's score and a
 * token's id; edges (parent, character) live in one open-addressing hash table, except
 * the root's BMP edges, which are a flat array.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define NO_EDGE UINT64_MAX
#define BMP 0x10000
#define IS_SURROGATE(c) ((c) >= 0xD800 && (c) <= 0xDFFF)

typedef struct {
    double score;    /* log(frequency) - log(total), for a word */
    int32_t token;   /* the vocabulary id of the string ending here, or -1 */
    int32_t is_word; /* a dictionary word with a frequency above 0 */
} Node;

typedef struct {
    Node *nodes;
    Py_ssize_t n_nodes, nodes_cap;
    uint64_t *keys;    /* edge key: parent << 21 | character; NO_EDGE where free */
    int32_t *children; /* the child node of each edge */
    size_t n_edges, edges_cap; /* edges_cap: a power of two */
    int shift;                 /* 64 - log2(edges_cap) */
    int32_t *root_bmp;         /* the root's child for each BMP character, or -1 */
} Trie;

/* char_classes: how BERT's char level treats each code point */
enum { WORD_CHAR = 0, ALONE = 1, SPACE = 2, DROPPED = 3 };
/* normalize_table: normalize drops the character, or the text needs Python's normalize */
#define NORM_DROP 0xFFFFFFFEu
#define NORM_PYTHON 0xFFFFFFFFu

typedef struct {
    PyObject_HEAD
    Trie trie;
    double unknown_score; /* log(1) - log(total): a character that is not a word */
    int32_t unk, cls, sep; /* special token ids; unk is -1 without a vocabulary */
    int32_t continuation;  /* the node of "##", or -1 */
    Py_ssize_t max_word_chars;
    PyObject *char_classes; /* bytes, one class per code point */
    PyObject *normalize;    /* Python's normalize, or None: text is used as it is */
    uint32_t *normalized;   /* per BMP code point: what normalize makes of it, or NORM_* */
    PyObject **strings;     /* per trie node: the token str ending there, or NULL */
    Py_ssize_t n_strings;
} WordCutter;

static PyTypeObject WordCutterType;

/* ---------------------------------------------------------------------------------- */
/* Characters                                                                          */
/* ---------------------------------------------------------------------------------- */

static inline int is_ascii_alnum(Py_UCS4 c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* jieba's re_han_default: the characters it joins into words. */
static inline int is_word_char(Py_UCS4 c) {
    return (c >= 0x4E00 && c <= 0x9FD5) || is_ascii_alnum(c) || c == '+' || c == '#' ||
           c == '&' || c == '.' || c == '_' || c == '%' || c == '-';
}

/* ---------------------------------------------------------------------------------- */
/* Trie                                                                                */
/* ---------------------------------------------------------------------------------- */

static inline size_t edge_slot(const Trie *t, uint64_t key) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> t->shift);
}

static inline int32_t trie_child(const Trie *t, int32_t node, Py_UCS4 c) {
    if (node == 0 && c < BMP)
        return t->root_bmp[c];
    uint64_t key = (uint64_t)node << 21 | c;
    size_t mask = t->edges_cap - 1;
    for (size_t i = edge_slot(t, key);; i = (i + 1) & mask) {
        if (t->keys[i] == key)
            return t->children[i];
        if (t->keys[i] == NO_EDGE)
            return -1;
    }
}

static void trie_free(Trie *t) {
    PyMem_Free(t->nodes);
    PyMem_Free(t->keys);
    PyMem_Free(t->children);
    PyMem_Free(t->root_bmp);
    memset(t, 0, sizeof(*t));
}

static int trie_alloc_edges(Trie *t, size_t cap) {
    t->keys = PyMem_Malloc(cap * sizeof(uint64_t));
    t->children = PyMem_Malloc(cap * sizeof(int32_t));
    if (!t->keys || !t->children)
        return -1;
    memset(t->keys, 0xFF, cap * sizeof(uint64_t)); /* NO_EDGE */
    t->edges_cap = cap;
    t->shift = 64;
    for (size_t c = cap; c > 1; c >>= 1)
        t->shift--;
    return 0;
}

static int trie_init(Trie *t) {
    memset(t, 0, sizeof(*t));
    t->nodes_cap = 1024;
    t->nodes = PyMem_Malloc(t->nodes_cap * sizeof(Node));
    t->root_bmp = PyMem_Malloc(BMP * sizeof(int32_t));
    if (!t->nodes || !t->root_bmp || trie_alloc_edges(t, 1024) < 0) {
        trie_free(t);
        PyErr_NoMemory();
        return -1;
    }
    memset(t->root_bmp, 0xFF, BMP * sizeof(int32_t)); /* -1 */
    t->nodes[0] = (Node){0.0, -1, 0};
    t->n_nodes = 1;
    return 0;
}

static int trie_copy(Trie *dst, const Trie *src) {
    memset(dst, 0, sizeof(*dst));
    dst->nodes = PyMem_Malloc(src->nodes_cap * sizeof(Node));
    dst->root_bmp = PyMem_Malloc(BMP * sizeof(int32_t));
    if (!dst->nodes || !dst->root_bmp || trie_alloc_edges(dst, src->edges_cap) < 0) {
        trie_free(dst);
        PyErr_NoMemory();
        return -1;
    }
    memcpy(dst->nodes, src->nodes, src->n_nodes * sizeof(Node));
    memcpy(dst->root_bmp, src->root_bmp, BMP * sizeof(int32_t));
    memcpy(dst->keys, src->keys, src->edges_cap * sizeof(uint64_t));
    memcpy(dst->children, src->children, src->edges_cap * sizeof(int32_t));
    dst->n_nodes = src->n_nodes;
    dst->nodes_cap = src->nodes_cap;
    dst->n_edges = src->n_edges;
    return 0;
}

static void trie_put_edge(Trie *t, uint64_t key, int32_t child) {
    size_t mask = t->edges_cap - 1, i = edge_slot(t, key);
    while (t->keys[i] != NO_EDGE)
        i = (i + 1) & mask;
    t->keys[i] = key;
    t->children[i] = child;
    t->n_edges++;
}

/* Double the edge table (kept at most half full). */
static int trie_grow_edges(Trie *t) {
    uint64_t *keys = t->keys;
    int32_t *children = t->children;
    size_t cap = t->edges_cap;
    if (trie_alloc_edges(t, cap * 2) < 0) {
        PyMem_Free(t->keys);
        PyMem_Free(t->children);
        t->keys = keys;
        t->children = children;
        t->edges_cap = cap;
        PyErr_NoMemory();
        return -1;
    }
    t->n_edges = 0;
    for (size_t i = 0; i < cap; i++)
        if (keys[i] != NO_EDGE)
            trie_put_edge(t, keys[i], children[i]);
    PyMem_Free(keys);
    PyMem_Free(children);
    return 0;
}

/* The child of node for character c, created if missing; -1 on error. */
static int32_t trie_add_child(Trie *t, int32_t node, Py_UCS4 c) {
    int32_t child = trie_child(t, node, c);
    if (child >= 0)
        return child;
    if (t->n_nodes >= INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "too many dictionary prefixes");
        return -1;
    }
    if (t->n_nodes == t->nodes_cap) {
        Node *nodes = PyMem_Realloc(t->nodes, 2 * t->nodes_cap * sizeof(Node));
        if (!nodes) {
            PyErr_NoMemory();
            return -1;
        }
        t->nodes = nodes;
        t->nodes_cap *= 2;
    }
    child = (int32_t)t->n_nodes++;
    t->nodes[child] = (Node){0.0, -1, 0};
    if (node == 0 && c < BMP) {
        t->root_bmp[c] = child;
        return child;
    }
    if (2 * (t->n_edges + 1) > t->edges_cap && trie_grow_edges(t) < 0)
        return -1;
    trie_put_edge(t, (uint64_t)node << 21 | c, child);
    return child;
}

/* The node of a str, created with its prefixes; -1 on error. */
static int32_t trie_insert(Trie *t, PyObject *word) {
    int kind = PyUnicode_KIND(word);
    const void *data = PyUnicode_DATA(word);
    int32_t node = 0;
    for (Py_ssize_t i = 0, n = PyUnicode_GET_LENGTH(word); i < n && node >= 0; i++)
        node = trie_add_child(t, node, PyUnicode_READ(kind, data, i));
    return node;
}

/* The node of s[0:n], or -1 where the trie does not hold it. */
static inline int32_t trie_find(const Trie *t, const Py_UCS4 *s, Py_ssize_t n) {
    int32_t node = 0;
    for (Py_ssize_t i = 0; i < n && node >= 0; i++)
        node = trie_child(t, node, s[i]);
    return node;
}

/* ---------------------------------------------------------------------------------- */
/* The cut                                                                             */
/* ---------------------------------------------------------------------------------- */

/* The best path through the word graph of the run s[start:end]: the piece starting at k
 * ends before next[k] + 1; score[k] is the path's score from k (jieba's calc). */
static void best_path(const WordCutter *self, const Py_UCS4 *s, Py_ssize_t start,
                      Py_ssize_t end, double *score, Py_ssize_t *next) {
    const Trie *t = &self->trie;
    score[end] = 0.0;
    for (Py_ssize_t k = end - 1; k >= start; k--) {
        double best = 0.0;
        Py_ssize_t to = k;
        int found = 0;
        int32_t node = 0;
        for (Py_ssize_t j = k; j < end; j++) {
            node = trie_child(t, node, s[j]);
            if (node < 0)
                break;
            if (t->nodes[node].is_word) {
                double value = t->nodes[node].score + score[j + 1];
                if (!found || value >= best) {
                    best = value;
                    to = j;
                    found = 1;
                }
            }
        }
        score[k] = found ? best : self->unknown_score + score[k + 1];
        next[k] = to;
    }
}

/* The pieces of the run s[start:end] along next, appended to ends; the new count. */
static Py_ssize_t run_pieces(const Py_UCS4 *s, Py_ssize_t start, Py_ssize_t end,
                             const Py_ssize_t *next, Py_ssize_t *ends, Py_ssize_t m) {
    Py_ssize_t letters = -1; /* start of pending single ASCII letters and digits */
    for (Py_ssize_t x = start, y; x < end; x = y) {
        y = next[x] + 1;
        if (y == x + 1 && is_ascii_alnum(s[x])) {
            if (letters < 0)
                letters = x;
            continue;
        }
        if (letters >= 0) {
            ends[m++] = x;
            letters = -1;
        }
        ends[m++] = y;
    }
    if (letters >= 0)
        ends[m++] = end;
    return m;
}

/* Where each piece of s[0:n] ends: ends[0] < ends[1] < ... = n; the number of pieces. */
static Py_ssize_t cut_ends(const WordCutter *self, const Py_UCS4 *s, Py_ssize_t n,
                           Py_ssize_t *ends, double *score, Py_ssize_t *next) {
    Py_ssize_t m = 0, i = 0;
    while (i < n) {
        if (!is_word_char(s[i])) {
            i += (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
            ends[m++] = i;
            continue;
        }
        Py_ssize_t end = i;
        while (end < n && is_word_char(s[end]))
            end++;
        best_path(self, s, i, end, score, next);
        m = run_pieces(s, i, end, next, ends, m);
        i = end;
    }
    return m;
}

/* ---------------------------------------------------------------------------------- */
/* Texts and work space (raw memory: used without the GIL)                             */
/* ---------------------------------------------------------------------------------- */

/* The characters of a list of texts, one after another: text k is chars[starts[k]:starts[k+1]]. */
typedef struct {
    Py_UCS4 *chars;
    Py_ssize_t n, cap, *starts, longest;
} Texts;

static void texts_free(Texts *t) {
    PyMem_RawFree(t->chars);
    PyMem_RawFree(t->starts);
    memset(t, 0, sizeof(*t));
}

static int texts_reserve(Texts *t, Py_ssize_t more) {
    Py_ssize_t used = t->starts[t->n];
    if (t->chars && used + more <= t->cap)
        return 0;
    Py_ssize_t cap = 2 * t->cap > used + more ? 2 * t->cap : used + more;
    Py_UCS4 *chars = PyMem_RawRealloc(t->chars, ((size_t)cap + 1) * sizeof(Py_UCS4));
    if (!chars) {
        PyErr_NoMemory();
        return -1;
    }
    t->chars = chars;
    t->cap = cap;
    return 0;
}

/* Append the characters of str text; -1 with an exception. */
static int texts_append(Texts *t, PyObject *text) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (texts_reserve(t, n) < 0 || (n && !PyUnicode_AsUCS4(text, t->chars + t->starts[t->n], n, 0)))
        return -1;
    t->starts[t->n + 1] = t->starts[t->n] + n;
    t->n++;
    return 0;
}

/* Append what normalize makes of text: from the table where every character is in the BMP
 * and in the table, else from Python's normalize. */
static int texts_append_normalized(const WordCutter *self, Texts *t, PyObject *text) {
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), m = 0;
    if (texts_reserve(t, n) < 0)
        return -1;
    Py_UCS4 *out = t->chars + t->starts[t->n];
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        uint32_t to = c < BMP ? self->normalized[c] : NORM_PYTHON;
        if (to == NORM_PYTHON) {
            PyObject *normalized = PyObject_CallOneArg(self->normalize, text);
            if (!normalized)
                return -1;
            int status = PyUnicode_Check(normalized) ? texts_append(t, normalized) : -1;
            if (status < 0 && !PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "normalize must return str");
            Py_DECREF(normalized);
            return status;
        }
        if (to != NORM_DROP)
            out[m++] = to;
    }
    t->starts[t->n + 1] = t->starts[t->n] + m;
    t->n++;
    return 0;
}

/* Append one text (see texts_copy). */
static int texts_copy_one(const WordCutter *self, PyObject *text, int normalize, Texts *t) {
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "text must be str, not %.100s", Py_TYPE(text)->tp_name);
        return -1;
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    for (Py_ssize_t i = 0; kind != PyUnicode_1BYTE_KIND && i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (IS_SURROGATE(c)) {
            PyObject *err = PyObject_CallFunction(PyExc_UnicodeEncodeError, "sOnns", "utf-8",
                                                  text, i, i + 1, "surrogates not allowed");
            if (err) {
                PyErr_SetObject(PyExc_UnicodeEncodeError, err);
                Py_DECREF(err);
            }
            return -1;
        }
    }
    int status = normalize && self->normalize != Py_None ? texts_append_normalized(self, t, text)
                                                         : texts_append(t, text);
    if (status == 0 && t->starts[t->n] - t->starts[t->n - 1] > t->longest)
        t->longest = t->starts[t->n] - t->starts[t->n - 1];
    return status;
}

/* Copy a list of str, normalized unless normalize is None; -1 with TypeError, or
 * UnicodeEncodeError for a lone surrogate (as when the text is encoded to UTF-8). */
static int texts_copy(const WordCutter *self, PyObject *list, int normalize, Texts *t) {
    memset(t, 0, sizeof(*t));
    /* A tuple of the texts: normalize runs Python code, which might change the list. */
    PyObject *items = PyList_AsTuple(list);
    if (!items)
        return -1;
    int status = 0;
    Py_ssize_t n = PyTuple_GET_SIZE(items);
    if (!(t->starts = PyMem_RawMalloc((n + 1) * sizeof(Py_ssize_t)))) {
        PyErr_NoMemory();
        status = -1;
    } else {
        t->starts[0] = 0;
    }
    for (Py_ssize_t k = 0; k < n && status == 0; k++)
        status = texts_copy_one(self, PyTuple_GET_ITEM(items, k), normalize, t);
    Py_DECREF(items);
    return status;
}

/* Buffers for the cut and the char level of texts of up to cap characters: a char-level
 * word's characters, and where each lies in the text. */
typedef struct {
    Py_ssize_t *ends, *next, *pos;
    double *score;
    Py_UCS4 *word;
} Work;

static void work_free(Work *w) {
    PyMem_RawFree(w->ends);
    PyMem_RawFree(w->next);
    PyMem_RawFree(w->pos);
    PyMem_RawFree(w->score);
    PyMem_RawFree(w->word);
    memset(w, 0, sizeof(*w));
}

static int work_alloc(Work *w, Py_ssize_t cap) {
    size_t size = (size_t)cap + 1;
    w->ends = PyMem_RawMalloc(size * sizeof(Py_ssize_t));
    w->next = PyMem_RawMalloc(size * sizeof(Py_ssize_t));
    w->pos = PyMem_RawMalloc(size * sizeof(Py_ssize_t));
    w->score = PyMem_RawMalloc(size * sizeof(double));
    w->word = PyMem_RawMalloc(size * sizeof(Py_UCS4));
    if (w->ends && w->next && w->pos && w->score && w->word)
        return 0;
    work_free(w);
    return -1;
}

/* ---------------------------------------------------------------------------------- */
/* Tokens                                                                              */
/* ---------------------------------------------------------------------------------- */

/* The tokens of texts: their ids and, with details (tokenize, encode_words), per token the
 * trie node of its string (-1 for [UNK], whose string is its characters in the text), where
 * those characters lie in the text (dropped ones left out), and its marks. */
enum { CONTINUATION = 1, WORD_START = 2 }; /* a "##" piece; the first token of a word */

typedef struct {
    int32_t *ids, *nodes;
    Py_ssize_t *begins, *ends;
    unsigned char *marks;
    Py_ssize_t n, cap;
    int details;
} Ids;

static void ids_free(Ids *ids) {
    PyMem_RawFree(ids->ids);
    PyMem_RawFree(ids->nodes);
    PyMem_RawFree(ids->begins);
    PyMem_RawFree(ids->ends);
    PyMem_RawFree(ids->marks);
    memset(ids, 0, sizeof(*ids));
}

/* realloc *p to n items of size bytes; 0 when it failed (*p then stays as it was). */
static int grow(void **p, Py_ssize_t n, size_t size) {
    void *grown = PyMem_RawRealloc(*p, (size_t)n * size);
    if (grown)
        *p = grown;
    return grown != NULL;
}

/* Room for one more token; -1 when out of memory (no exception set: the GIL is released). */
static int ids_reserve(Ids *ids) {
    if (ids->n < ids->cap)
        return 0;
    Py_ssize_t cap = ids->cap < 64 ? 64 : 2 * ids->cap;
    int ok = grow((void **)&ids->ids, cap, sizeof(int32_t));
    if (ok && ids->details)
        ok = grow((void **)&ids->nodes, cap, sizeof(int32_t)) &&
             grow((void **)&ids->begins, cap, sizeof(Py_ssize_t)) &&
             grow((void **)&ids->ends, cap, sizeof(Py_ssize_t)) &&
             grow((void **)&ids->marks, cap, 1);
    if (!ok)
        return -1;
    ids->cap = cap;
    return 0;
}

/* Append the token of node (its id, or [UNK] where node holds none), whose characters lie
 * in text[begin:end]; -1 when out of memory. */
static inline int add_token(const WordCutter *self, Ids *ids, int32_t node, Py_ssize_t begin,
                            Py_ssize_t end, int mark) {
    int32_t token = node >= 0 ? self->trie.nodes[node].token : -1;
    if (ids_reserve(ids) < 0)
        return -1;
    ids->ids[ids->n] = token >= 0 ? token : self->unk;
    if (ids->details) {
        ids->nodes[ids->n] = token >= 0 ? node : -1;
        ids->begins[ids->n] = begin;
        ids->ends[ids->n] = end;
        ids->marks[ids->n] = (unsigned char)mark;
    }
    ids->n++;
    return 0;
}

/* Append WordPiece's tokens of the word w[0:n], whose characters lie at pos[0:n] in the
 * text (as bert4keras's _word_piece_tokenize). */
static int add_word_pieces(const WordCutter *self, const Py_UCS4 *w, const Py_ssize_t *pos,
                           Py_ssize_t n, Ids *ids) {
    const Trie *t = &self->trie;
    Py_ssize_t word_end = pos[n - 1] + 1;
    if (n > self->max_word_chars)
        return add_token(self, ids, trie_find(t, w, n), pos[0], word_end, 0);
    Py_ssize_t mark = ids->n;
    for (Py_ssize_t start = 0; start < n;) {
        int32_t node = start == 0 ? 0 : self->continuation, found = -1;
        Py_ssize_t end = start;
        for (Py_ssize_t k = start; k < n && node >= 0; k++) {
            node = trie_child(t, node, w[k]);
            if (node >= 0 && t->nodes[node].token >= 0) {
                found = node;
                end = k + 1;
            }
        }
        if (found < 0) { /* no piece here: the whole word is [UNK] */
            ids->n = mark;
            return add_token(self, ids, -1, pos[0], word_end, 0);
        }
        if (add_token(self, ids, found, pos[start], pos[end - 1] + 1, start ? CONTINUATION : 0) < 0)
            return -1;
        start = end;
    }
    return 0;
}

/* Append the char level's tokens of s[a:b]: words end at a space or a lone character, and
 * leave out dropped characters. */
static int add_char_level(const WordCutter *self, const Py_UCS4 *s, Py_ssize_t a,
                          Py_ssize_t b, Work *work, Ids *ids) {
    const unsigned char *classes = (const unsigned char *)PyBytes_AS_STRING(self->char_classes);
    Py_ssize_t n_word = 0;
    for (Py_ssize_t i = a; i <= b; i++) {
        int class = i < b ? classes[s[i]] : SPACE;
        if (class == WORD_CHAR) {
            work->pos[n_word] = i;
            work->word[n_word++] = s[i];
            continue;
        }
        if (class == DROPPED)
            continue;
        if (n_word && add_word_pieces(self, work->word, work->pos, n_word, ids) < 0)
            return -1;
        n_word = 0;
        if (class == ALONE && add_token(self, ids, trie_child(&self->trie, 0, s[i]), i, i + 1, 0) < 0)
            return -1;
    }
    return 0;
}

/* Mark WORD_START on the char-level tokens ids[from:] of s[0:n]: a token other than a "##"
 * piece whose first character lies in another piece of the cut than the previous token's
 * (and the first token). */
static void mark_cut_words(const WordCutter *self, const Py_UCS4 *s, Py_ssize_t n, Work *work,
                           Ids *ids, Py_ssize_t from) {
    Py_ssize_t m = cut_ends(self, s, n, work->ends, work->score, work->next);
    for (Py_ssize_t k = from, piece = 0, last = -1; k < ids->n; k++, last = piece) {
        while (piece < m && work->ends[piece] <= ids->begins[k])
            piece++;
        if (k == from || (piece != last && !(ids->marks[k] & CONTINUATION)))
            ids->marks[k] |= WORD_START;
    }
}

/* Append the tokens of the text s[0:n]: the word level's, or the char level's. With
 * details, WORD_START marks the first token of each piece of the cut (word level), or, with
 * cut_words, of each piece of the cut merged with its "##" pieces (char level). */
static int add_text(const WordCutter *self, const Py_UCS4 *s, Py_ssize_t n, int words,
                    int cut_words, Work *work, Ids *ids) {
    Py_ssize_t from = ids->n;
    if (!words) {
        if (add_char_level(self, s, 0, n, work, ids) < 0)
            return -1;
        if (cut_words && ids->details)
            mark_cut_words(self, s, n, work, ids, from);
        return 0;
    }
    Py_ssize_t m = cut_ends(self, s, n, work->ends, work->score, work->next);
    for (Py_ssize_t k = 0, a = 0; k < m; a = work->ends[k++]) {
        Py_ssize_t b = work->ends[k], first = ids->n;
        int32_t node = trie_find(&self->trie, s + a, b - a);
        int status = node >= 0 && self->trie.nodes[node].token >= 0
                         ? add_token(self, ids, node, a, b, 0)
                         : add_char_level(self, s, a, b, work, ids);
        if (status < 0)
            return -1;
        if (ids->details && ids->n > first)
            ids->marks[first] |= WORD_START;
    }
    return 0;
}

/* The tokens of every text: text k's are ids[ends[k - 1]:ends[k]] (ends[-1] = 0). */
static int add_texts(const WordCutter *self, const Texts *texts, int words, int cut_words,
                     Work *work, Ids *ids, Py_ssize_t *ends) {
    for (Py_ssize_t k = 0; k < texts->n; k++) {
        const Py_UCS4 *s = texts->chars + texts->starts[k];
        if (add_text(self, s, texts->starts[k + 1] - texts->starts[k], words, cut_words, work,
                     ids) < 0)
            return -1;
        ends[k] = ids->n;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* Results                                                                             */
/* ---------------------------------------------------------------------------------- */

/* The int objects of ids below ID_OBJECTS, made on first use and kept: a batch's lists then
 * share them instead of each allocating its own. */
#define ID_OBJECTS (1 << 18)
static PyObject **id_objects;

static PyObject *id_object(int32_t id) {
    if (id >= ID_OBJECTS)
        return PyLong_FromLong(id);
    if (!id_objects && !(id_objects = PyMem_Calloc(ID_OBJECTS, sizeof(PyObject *))))
        return PyErr_NoMemory();
    if (!id_objects[id] && !(id_objects[id] = PyLong_FromLong(id)))
        return NULL;
    Py_INCREF(id_objects[id]);
    return id_objects[id];
}

/* bert4keras's truncate_sequences(maxlen, -2, first, second) on lengths that count [CLS]
 * and [SEP]: the longer one loses a token at a time (the first on ties). */
static void truncated_lengths(Py_ssize_t *first, Py_ssize_t *second, Py_ssize_t maxlen) {
    Py_ssize_t excess = *first + *second - maxlen;
    if (excess <= 0)
        return;
    Py_ssize_t gap = *first > *second ? *first - *second : *second - *first;
    Py_ssize_t cut = gap < excess ? gap : excess;
    if (*first > *second)
        *first -= cut;
    else
        *second -= cut;
    excess -= cut;
    *first -= (excess + 1) / 2;
    *second -= excess / 2;
}

/* Put [CLS] body [SEP] cut to length items (as ([CLS] + body)[:length - 1] + [SEP]) into
 * list from position at, skipping the first item if skip; the new position. */
static Py_ssize_t put_segment(PyObject *list, Py_ssize_t at, const WordCutter *self,
                              const int32_t *body, Py_ssize_t n, Py_ssize_t length, int skip) {
    Py_ssize_t keep = length - 1 < n + 1 ? length - 1 : n + 1; /* from [CLS] + body */
    for (Py_ssize_t i = skip; i <= keep; i++) {
        PyObject *id = id_object(i == keep ? self->sep : i == 0 ? self->cls : body[i - 1]);
        if (!id)
            return -1;
        PyList_SET_ITEM(list, at++, id);
    }
    return at;
}

/* (token ids, segment ids) of [CLS] first [SEP] (second [SEP]) as bert4keras's encode. */
static PyObject *encoding(const WordCutter *self, const int32_t *first, Py_ssize_t n_first,
                          const int32_t *second, Py_ssize_t n_second, int pair,
                          Py_ssize_t maxlen) {
    Py_ssize_t first_length = n_first + 2, second_length = pair ? n_second + 2 : 0;
    if (!pair && maxlen > 0)
        first_length = maxlen < first_length ? maxlen : first_length;
    else if (pair && maxlen > 0)
        truncated_lengths(&first_length, &second_length, maxlen + 1);
    Py_ssize_t n = first_length + (pair ? second_length - 1 : 0);
    PyObject *ids = PyList_New(n), *segments = PyList_New(n), *result = NULL;
    if (!ids || !segments)
        goto done;
    Py_ssize_t at = put_segment(ids, 0, self, first, n_first, first_length, 0);
    if (at >= 0 && pair)
        at = put_segment(ids, at, self, second, n_second, second_length, 1);
    if (at < 0)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *segment = id_object(i >= first_length);
        if (!segment)
            goto done;
        PyList_SET_ITEM(segments, i, segment);
    }
    result = PyTuple_Pack(2, ids, segments);
done:
    Py_XDECREF(ids);
    Py_XDECREF(segments);
    return result;
}

/* The str of token k of a text s: its vocabulary string, or for [UNK] its characters in s
 * less dropped ones (buffer: room for them). */
static PyObject *token_string(const WordCutter *self, const Ids *ids, Py_ssize_t k,
                              const Py_UCS4 *s, Py_UCS4 *buffer) {
    if (ids->nodes[k] >= 0) {
        PyObject *string = self->strings[ids->nodes[k]];
        Py_INCREF(string);
        return string;
    }
    const unsigned char *classes = (const unsigned char *)PyBytes_AS_STRING(self->char_classes);
    Py_ssize_t n = 0;
    for (Py_ssize_t i = ids->begins[k]; i < ids->ends[k]; i++)
        if (classes[s[i]] != DROPPED)
            buffer[n++] = s[i];
    return PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buffer, n);
}

/* tokenize's list of the strings of tokens a..b-1 of the text s. */
static PyObject *token_strings(const WordCutter *self, const Ids *ids, Py_ssize_t a,
                               Py_ssize_t b, const Py_UCS4 *s, Py_UCS4 *buffer) {
    PyObject *list = PyList_New(b - a);
    for (Py_ssize_t k = a; list && k < b; k++) {
        PyObject *string = token_string(self, ids, k, s, buffer);
        if (!string)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, k - a, string);
    }
    return list;
}

/* encode_words's (ids, word starts) of tokens a..b-1. */
static PyObject *word_starts(const Ids *ids, Py_ssize_t a, Py_ssize_t b) {
    PyObject *tokens = PyList_New(b - a), *starts = PyList_New(b - a), *result = NULL;
    for (Py_ssize_t k = a; tokens && starts && k < b; k++) {
        PyObject *id = id_object(ids->ids[k]), *start = id_object(!!(ids->marks[k] & WORD_START));
        if (id)
            PyList_SET_ITEM(tokens, k - a, id);
        if (start)
            PyList_SET_ITEM(starts, k - a, start);
        if (!id || !start)
            goto done;
    }
    if (tokens && starts)
        result = PyTuple_Pack(2, tokens, starts);
done:
    Py_XDECREF(tokens);
    Py_XDECREF(starts);
    return result;
}

/* ---------------------------------------------------------------------------------- */
/* WordCutter                                                                          */
/* ---------------------------------------------------------------------------------- */

/* Unpack a (str, int) pair; 0 with TypeError for anything else. */
static int parse_pair(PyObject *item, const char *format, PyObject **text, void *number) {
    if (PyTuple_Check(item))
        return PyArg_ParseTuple(item, format, text, number);
    PyErr_Format(PyExc_TypeError, "expected (str, int) pairs, not %.100s",
                 Py_TYPE(item)->tp_name);
    return 0;
}

static int add_words(WordCutter *self, PyObject *words, long long total) {
    double log_total = log((double)total);
    PyObject *iter = PyObject_GetIter(words), *item;
    if (!iter)
        return -1;
    while ((item = PyIter_Next(iter))) {
        PyObject *word;
        long long freq;
        int ok = parse_pair(item, "UL;words must be (str, int) pairs", &word, &freq);
        if (ok && freq > total) {
            PyErr_Format(PyExc_ValueError, "frequency %lld is above the total", freq);
            ok = 0;
        }
        int32_t node = ok ? trie_insert(&self->trie, word) : -1;
        Py_DECREF(item);
        if (node < 0) {
            Py_DECREF(iter);
            return -1;
        }
        Node *entry = &self->trie.nodes[node];
        entry->is_word = freq > 0;
        entry->score = freq > 0 ? log((double)freq) - log_total : 0.0;
    }
    Py_DECREF(iter);
    return PyErr_Occurred() ? -1 : 0;
}

static PyObject *WordCutter_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"words", "total", NULL};
    PyObject *words;
    long long total;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OL:WordCutter", keywords, &words, &total))
        return NULL;
    if (total < 1) {
        PyErr_SetString(PyExc_ValueError, "total must be a positive integer");
        return NULL;
    }
    WordCutter *self = (WordCutter *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->unk = self->continuation = -1;
    self->unknown_score = log(1.0) - log((double)total);
    if (trie_init(&self->trie) < 0 || add_words(self, words, total) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int check_id(int id, const char *what) {
    if (id >= 0)
        return 1;
    PyErr_Format(PyExc_ValueError, "%s %d is out of range", what, id);
    return 0;
}

/* Keep token as the string of node (for tokenize); -1 when out of memory. */
static int keep_string(WordCutter *self, int32_t node, PyObject *token) {
    if (node >= self->n_strings) {
        Py_ssize_t n = 2 * self->n_strings > node + 1 ? 2 * self->n_strings : node + 1;
        PyObject **strings = PyMem_Realloc(self->strings, (size_t)n * sizeof(PyObject *));
        if (!strings) {
            PyErr_NoMemory();
            return -1;
        }
        memset(strings + self->n_strings, 0, (size_t)(n - self->n_strings) * sizeof(PyObject *));
        self->strings = strings;
        self->n_strings = n;
    }
    Py_INCREF(token);
    Py_XSETREF(self->strings[node], token);
    return 0;
}

/* Add the vocabulary's (token, id) pairs to the trie (which holds no tokens yet). */
static int add_tokens(WordCutter *self, PyObject *vocab) {
    PyObject *iter = PyObject_GetIter(vocab), *item;
    if (!iter)
        return -1;
    while ((item = PyIter_Next(iter))) {
        PyObject *token;
        int id;
        int ok = parse_pair(item, "Ui;vocab must be (str, int) pairs", &token, &id) &&
                 check_id(id, "token id");
        int32_t node = ok ? trie_insert(&self->trie, token) : -1;
        if (node >= 0 && keep_string(self, node, token) < 0)
            node = -1;
        Py_DECREF(item);
        if (node < 0) {
            Py_DECREF(iter);
            return -1;
        }
        self->trie.nodes[node].token = id;
    }
    Py_DECREF(iter);
    return PyErr_Occurred() ? -1 : 0;
}

/* Check char_classes, and copy normalize_table (array('I') of BMP_SIZE entries) unless None. */
static int set_tables(WordCutter *self, PyObject *classes, PyObject *normalize, PyObject *table) {
    if (PyBytes_GET_SIZE(classes) != 0x110000) {
        PyErr_SetString(PyExc_ValueError, "char_classes must hold one byte per code point");
        return -1;
    }
    for (Py_ssize_t c = 0; c < 0x110000; c++) {
        if ((unsigned char)PyBytes_AS_STRING(classes)[c] > DROPPED) {
            PyErr_Format(PyExc_ValueError, "char_classes: unknown class for code point %zd", c);
            return -1;
        }
    }
    Py_INCREF(classes);
    self->char_classes = classes;
    Py_INCREF(normalize);
    self->normalize = normalize;
    if (normalize == Py_None)
        return 0;
    Py_buffer view = {.buf = NULL};
    if (!PyCallable_Check(normalize) || PyObject_GetBuffer(table, &view, PyBUF_FORMAT) < 0 ||
        view.itemsize != 4 || !view.format || strcmp(view.format, "I") != 0 ||
        view.len != BMP * 4) {
        if (view.buf)
            PyBuffer_Release(&view);
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError, "normalize must be callable, with normalize_table an "
                                         "array('I') of one entry per BMP code point");
        return -1;
    }
    self->normalized = PyMem_Malloc(BMP * sizeof(uint32_t));
    if (self->normalized)
        memcpy(self->normalized, view.buf, BMP * sizeof(uint32_t));
    PyBuffer_Release(&view);
    return self->normalized ? 0 : (PyErr_NoMemory(), -1);
}

static PyObject *WordCutter_with_vocab(WordCutter *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"vocab", "unk_id", "cls_id", "sep_id", "max_word_chars",
                               "char_classes", "normalize", "normalize_table", NULL};
    PyObject *vocab, *classes, *normalize = Py_None, *table = Py_None;
    int unk, cls, sep;
    Py_ssize_t max_word_chars;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OiiinS|OO:with_vocab", keywords, &vocab,
                                     &unk, &cls, &sep, &max_word_chars, &classes, &normalize,
                                     &table))
        return NULL;
    if (!check_id(unk, "unk_id") || !check_id(cls, "cls_id") || !check_id(sep, "sep_id"))
        return NULL;
    WordCutter *copy = (WordCutter *)WordCutterType.tp_alloc(&WordCutterType, 0);
    if (!copy)
        return NULL;
    if (set_tables(copy, classes, normalize, table) < 0 || trie_copy(&copy->trie, &self->trie) < 0) {
        Py_DECREF(copy);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < copy->trie.n_nodes; i++) /* the copy's vocabulary replaces any */
        copy->trie.nodes[i].token = -1;
    if (add_tokens(copy, vocab) < 0) {
        Py_DECREF(copy);
        return NULL;
    }
    copy->unknown_score = self->unknown_score;
    copy->unk = unk;
    copy->cls = cls;
    copy->sep = sep;
    copy->max_word_chars = max_word_chars;
    Py_UCS4 hashes[2] = {'#', '#'};
    copy->continuation = trie_find(&copy->trie, hashes, 2);
    return (PyObject *)copy;
}

static PyObject *WordCutter_cut(WordCutter *self, PyObject *text) {
    PyObject *list = PyList_New(1), *pieces = NULL;
    if (!list)
        return NULL;
    Py_INCREF(text);
    PyList_SET_ITEM(list, 0, text);
    Texts texts;
    Work work = {0};
    if (texts_copy(self, list, 0, &texts) == 0 && work_alloc(&work, texts.longest) == 0) {
        Py_ssize_t m = cut_ends(self, texts.chars, texts.starts[1], work.ends, work.score,
                                work.next);
        if ((pieces = PyList_New(m))) {
            for (Py_ssize_t k = 0, start = 0; k < m; start = work.ends[k++]) {
                PyObject *piece = PyUnicode_Substring(text, start, work.ends[k]);
                if (!piece) {
                    Py_CLEAR(pieces);
                    break;
                }
                PyList_SET_ITEM(pieces, k, piece);
            }
        }
    } else if (!PyErr_Occurred()) {
        PyErr_NoMemory();
    }
    work_free(&work);
    texts_free(&texts);
    Py_DECREF(list);
    return pieces;
}

/* A batch of texts (and pairs) copied, normalized and tokenized: text k's tokens are
 * ids[ends[k - 1]:ends[k]] (ends[-1] = 0), its pair's ids[ends[n + k - 1]:ends[n + k]]. */
typedef struct {
    Texts firsts, seconds;
    Work work;
    Ids ids;
    Py_ssize_t *ends;
} Batch;

static void batch_free(Batch *b) {
    PyMem_RawFree(b->ends);
    ids_free(&b->ids);
    work_free(&b->work);
    texts_free(&b->firsts);
    texts_free(&b->seconds);
}

/* Fill b from the lists texts and pairs (or NULL), the GIL released while it tokenizes;
 * details and cut_words as for add_text. -1 with an exception (b is freed either way by
 * batch_free). */
static int batch_run(const WordCutter *self, PyObject *texts, PyObject *pairs, int words,
                     int details, int cut_words, Batch *b) {
    Py_ssize_t n = PyList_GET_SIZE(texts);
    memset(b, 0, sizeof(*b));
    b->ids.details = details;
    if (!(b->ends = PyMem_RawMalloc(2 * (n + 1) * sizeof(Py_ssize_t)))) {
        PyErr_NoMemory();
        return -1;
    }
    if (texts_copy(self, texts, 1, &b->firsts) < 0 || (pairs && texts_copy(self, pairs, 1, &b->seconds) < 0))
        return -1;
    int failed;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t longest = b->firsts.longest > b->seconds.longest ? b->firsts.longest : b->seconds.longest;
    failed = work_alloc(&b->work, longest) < 0 ||
             add_texts(self, &b->firsts, words, cut_words, &b->work, &b->ids, b->ends) < 0 ||
             (pairs && add_texts(self, &b->seconds, words, cut_words, &b->work, &b->ids, b->ends + n) < 0);
    Py_END_ALLOW_THREADS
    if (failed)
        PyErr_NoMemory();
    return failed ? -1 : 0;
}

/* What batch_results makes of each text: encode's, tokenize's or encode_words's result. */
enum { ENCODINGS, TOKEN_STRINGS, WORD_STARTS };

/* The list of each text's result (pair and maxlen: for ENCODINGS). */
static PyObject *batch_results(const WordCutter *self, const Batch *b, Py_ssize_t n, int what,
                               int pair, Py_ssize_t maxlen) {
    PyObject *result = PyList_New(n);
    const Py_ssize_t *ends = b->ends;
    for (Py_ssize_t k = 0; result && k < n; k++) {
        Py_ssize_t a = k ? ends[k - 1] : 0, e = ends[k], c = 0, d = 0;
        if (pair) {
            c = k ? ends[n + k - 1] : ends[n - 1];
            d = ends[n + k];
        }
        PyObject *item =
            what == ENCODINGS ? encoding(self, b->ids.ids + a, e - a, b->ids.ids + c, d - c, pair, maxlen)
            : what == TOKEN_STRINGS ? token_strings(self, &b->ids, a, e, b->firsts.chars + b->firsts.starts[k],
                                                    b->work.word)
                                    : word_starts(&b->ids, a, e);
        if (item)
            PyList_SET_ITEM(result, k, item);
        else
            Py_CLEAR(result);
    }
    return result;
}

static PyObject *WordCutter_encode(WordCutter *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"texts", "pairs", "maxlen", "words", NULL};
    PyObject *texts, *pairs = Py_None, *result = NULL;
    Py_ssize_t maxlen = 0;
    int words = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!|Onp:encode", keywords, &PyList_Type,
                                     &texts, &pairs, &maxlen, &words))
        return NULL;
    int pair = pairs != Py_None;
    Py_ssize_t n = PyList_GET_SIZE(texts);
    if (self->unk < 0) {
        PyErr_SetString(PyExc_ValueError, "encode needs a vocabulary: use with_vocab");
        return NULL;
    }
    if (pair && (!PyList_Check(pairs) || PyList_GET_SIZE(pairs) != n)) {
        PyErr_SetString(PyExc_ValueError, "pairs must be None or a list as long as texts");
        return NULL;
    }
    Batch b;
    if (batch_run(self, texts, pair ? pairs : NULL, words, 0, 0, &b) == 0)
        result = batch_results(self, &b, n, ENCODINGS, pair, maxlen);
    batch_free(&b);
    return result;
}

/* tokenize (strings) or encode_words: each text's tokens, found with their details while
 * the GIL is released. */
static PyObject *detailed(WordCutter *self, PyObject *args, PyObject *kwargs,
                          const char *format, int strings) {
    static char *keywords[] = {"texts", "words", NULL};
    PyObject *texts, *result = NULL;
    int words = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, format, keywords, &PyList_Type, &texts, &words))
        return NULL;
    if (self->unk < 0) {
        PyErr_SetString(PyExc_ValueError, "tokens need a vocabulary: use with_vocab");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(texts);
    Batch b;
    if (batch_run(self, texts, NULL, words, 1, !strings, &b) == 0)
        result = batch_results(self, &b, n, strings ? TOKEN_STRINGS : WORD_STARTS, 0, 0);
    batch_free(&b);
    return result;
}

static PyObject *WordCutter_tokenize(WordCutter *self, PyObject *args, PyObject *kwargs) {
    return detailed(self, args, kwargs, "O!|p:tokenize", 1);
}

static PyObject *WordCutter_encode_words(WordCutter *self, PyObject *args, PyObject *kwargs) {
    return detailed(self, args, kwargs, "O!|p:encode_words", 0);
}

static void WordCutter_dealloc(WordCutter *self) {
    for (Py_ssize_t i = 0; i < self->n_strings; i++)
        Py_XDECREF(self->strings[i]);
    PyMem_Free(self->strings);
    Py_XDECREF(self->char_classes);
    Py_XDECREF(self->normalize);
    PyMem_Free(self->normalized);
    trie_free(&self->trie);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef WordCutter_methods[] = {
    {"cut", (PyCFunction)WordCutter_cut, METH_O,
     "cut(text) -> list[str]: jieba's pieces of text, HMM off."},
    {"with_vocab", (PyCFunction)(void (*)(void))WordCutter_with_vocab,
     METH_VARARGS | METH_KEYWORDS,
     "with_vocab(vocab, unk_id, cls_id, sep_id, max_word_chars, char_classes, normalize=None, "
     "normalize_table=None) -> WordCutter: a copy that also holds the vocabulary ((token, id) "
     "pairs), for encode."},
    {"encode", (PyCFunction)(void (*)(void))WordCutter_encode, METH_VARARGS | METH_KEYWORDS,
     "encode(texts, pairs=None, maxlen=0, words=True) -> list[tuple[list[int], list[int]]]: "
     "bert4keras's (token_ids, segment_ids) of each text (and pair), word or char level; "
     "maxlen 0: no limit."},
    {"tokenize", (PyCFunction)(void (*)(void))WordCutter_tokenize, METH_VARARGS | METH_KEYWORDS,
     "tokenize(texts, words=True) -> list[list[str]]: bert4keras's tokens of each text, "
     "without [CLS] and [SEP] (an [UNK] token shows its characters), word or char level."},
    {"encode_words", (PyCFunction)(void (*)(void))WordCutter_encode_words,
     METH_VARARGS | METH_KEYWORDS,
     "encode_words(texts, words=True) -> list[tuple[list[int], list[int]]]: each text's token "
     "ids, without [CLS] and [SEP], and 1 for a token that starts a word, else 0. Word level: "
     "a word is a piece of the cut; char level: a piece of this cutter's cut, merged with the "
     "'##' pieces that continue its last char-level word."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject WordCutterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wobert._wordcut.WordCutter",
    .tp_doc = "WordCutter(words, total): jieba's cut with the HMM off, for (word, frequency) "
              "pairs whose dictionary lines sum to total.",
    .tp_basicsize = sizeof(WordCutter),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = WordCutter_new,
    .tp_dealloc = (destructor)WordCutter_dealloc,
    .tp_methods = WordCutter_methods,
};

/* ---------------------------------------------------------------------------------- */
/* Module                                                                              */
/* ---------------------------------------------------------------------------------- */

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "wobert._wordcut",
    .m_doc = "jieba's cut with the HMM off, and bert4keras's token ids and tokens, in C.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__wordcut(void) {
    if (PyType_Ready(&WordCutterType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&WordCutterType);
    if (PyModule_AddObject(m, "WordCutter", (PyObject *)&WordCutterType) < 0) {
        Py_DECREF(&WordCutterType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
