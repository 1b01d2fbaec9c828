# tern — build, run and test. `make` builds everything into bin/.
# Layers: src/lib (generic) <- src/mail (mail knowledge) <- src/ternd, src/ternctl, src/helpers.

CC       ?= cc
CLANG    ?= clang
HARDEN   := -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE -fstack-clash-protection
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CSTD     := -std=c11 -D_GNU_SOURCE
OPT      ?= -O2 -g
CFLAGS   := $(CSTD) $(OPT) $(WARN) $(HARDEN) -Isrc -MMD -MP
LDFLAGS  := -pie -Wl,-z,relro,-z,now -Wl,--as-needed
LIBS     := -lldap -llber -levent_core -lssl -lcrypto -lcdb -lcrypt -lunbound -lseccomp -lm

B        := build
LIB_SRC  := $(wildcard src/lib/*.c)
MAIL_SRC := $(wildcard src/mail/*.c)
TERND_SRC:= $(wildcard src/ternd/*.c src/ternd/*/*.c)
CTL_SRC  := $(wildcard src/ternctl/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/%.o)
MAIL_OBJ := $(MAIL_SRC:%.c=$(B)/%.o)
TERND_OBJ:= $(TERND_SRC:%.c=$(B)/%.o)
CTL_OBJ  := $(CTL_SRC:%.c=$(B)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/unit/%)
UNIT_SAN := $(UNIT_SRC:tests/unit/%.c=$(B)/unit-san/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(B)/fuzz/%)

PROGS := bin/ternd bin/ternctl bin/tern-local bin/tern-pop3 bin/tern-queue bin/tern-reply bin/sendmail bin/mailq bin/newaliases

.PHONY: all run test test-build unit unit-san fuzz fuzz-build e2e crash deps clean install layering bench
all: deps-build $(PROGS)

deps-build:
	@scripts/deps build
deps:
	@scripts/deps test

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/libtern.a: $(LIB_OBJ)
	ar rcs $@ $^
$(B)/libmail.a: $(MAIL_OBJ)
	ar rcs $@ $^

LOCAL_OBJ := $(B)/src/helpers/tern-local.o $(B)/src/helpers/local_profile.o
bin/ternd: $(TERND_OBJ) $(LOCAL_OBJ) $(B)/libmail.a $(B)/libtern.a
	@mkdir -p bin
	$(CC) $(LDFLAGS) -o $@ $(TERND_OBJ) $(LOCAL_OBJ) $(B)/libmail.a $(B)/libtern.a $(LIBS)
bin/ternctl: $(CTL_OBJ) $(B)/libmail.a $(B)/libtern.a
	@mkdir -p bin
	$(CC) $(LDFLAGS) -o $@ $(CTL_OBJ) $(B)/libmail.a $(B)/libtern.a $(LIBS)
bin/tern-local: $(B)/src/helpers/local_main.o $(LOCAL_OBJ) $(B)/libmail.a $(B)/libtern.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
bin/tern-pop3: $(B)/src/helpers/pop3_main.o $(B)/src/helpers/tern-pop3.o $(B)/libmail.a $(B)/libtern.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
bin/tern-queue: $(B)/src/helpers/tern-queue.o $(B)/libmail.a $(B)/libtern.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
bin/tern-reply: $(B)/src/helpers/tern-reply.o $(B)/libmail.a $(B)/libtern.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
bin/sendmail bin/mailq bin/newaliases: bin/ternctl
	ln -sf ternctl $@

# --- the test build ------------------------------------------------------------
# The same programs compiled with -DTERN_TEST into $(TBIN): only they contain the test hooks
# (crash points, TERN_QP_* timing overrides, forbidden-frame injection). The tests run these;
# bin/ never contains a hook.
TB       := $(B)/t
TBIN     := $(B)/tbin
TCFLAGS  := $(CFLAGS) -DTERN_TEST
T_LIB    := $(LIB_SRC:%.c=$(TB)/%.o)
T_MAIL   := $(MAIL_SRC:%.c=$(TB)/%.o)
T_TERND  := $(TERND_SRC:%.c=$(TB)/%.o)
T_CTL    := $(CTL_SRC:%.c=$(TB)/%.o)
T_PROGS  := $(PROGS:bin/%=$(TBIN)/%)
T_LOCAL  := $(TB)/src/helpers/tern-local.o $(TB)/src/helpers/local_profile.o
$(TB)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(TCFLAGS) -c $< -o $@
$(TB)/libtern.a: $(T_LIB)
	ar rcs $@ $^
$(TB)/libmail.a: $(T_MAIL)
	ar rcs $@ $^
$(TBIN)/ternd: $(T_TERND) $(T_LOCAL) $(TB)/libmail.a $(TB)/libtern.a
	@mkdir -p $(TBIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
$(TBIN)/ternctl: $(T_CTL) $(TB)/libmail.a $(TB)/libtern.a
	@mkdir -p $(TBIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
$(TBIN)/tern-local: $(TB)/src/helpers/local_main.o $(T_LOCAL) $(TB)/libmail.a $(TB)/libtern.a
	@mkdir -p $(TBIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
$(TBIN)/tern-pop3: $(TB)/src/helpers/pop3_main.o $(TB)/src/helpers/tern-pop3.o $(TB)/libmail.a $(TB)/libtern.a
	@mkdir -p $(TBIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
$(TBIN)/tern-queue: $(TB)/src/helpers/tern-queue.o $(TB)/libmail.a $(TB)/libtern.a
	@mkdir -p $(TBIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
$(TBIN)/tern-reply: $(TB)/src/helpers/tern-reply.o $(TB)/libmail.a $(TB)/libtern.a
	@mkdir -p $(TBIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
$(TBIN)/sendmail $(TBIN)/mailq $(TBIN)/newaliases: $(TBIN)/ternctl
	ln -sf ternctl $@
test-build: $(T_PROGS)

# --- tests -------------------------------------------------------------------
$(B)/unit/%: tests/unit/%.c $(B)/libmail.a $(B)/libtern.a tests/unit/t.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(B)/libmail.a $(B)/libtern.a $(LIBS)

# sanitizer and fuzzer builds: the library sources are compiled once into an archive each
SANFLAGS := $(CSTD) -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all $(WARN) -Isrc -Itests/unit
FZFLAGS  := $(CSTD) -O1 -g -fsanitize=fuzzer-no-link,address,undefined -Isrc
SAN_OBJ  := $(LIB_SRC:%.c=$(B)/san/%.o) $(MAIL_SRC:%.c=$(B)/san/%.o)
FZ_OBJ   := $(LIB_SRC:%.c=$(B)/fz/%.o) $(MAIL_SRC:%.c=$(B)/fz/%.o)
$(B)/san/%.o: %.c
	@mkdir -p $(dir $@)
	$(CLANG) $(SANFLAGS) -MMD -MP -c $< -o $@
$(B)/fz/%.o: %.c
	@mkdir -p $(dir $@)
	$(CLANG) $(FZFLAGS) -MMD -MP -c $< -o $@
$(B)/libsan.a: $(SAN_OBJ)
	ar rcs $@ $^
$(B)/libfz.a: $(FZ_OBJ)
	ar rcs $@ $^
$(B)/unit-san/%: tests/unit/%.c $(B)/libsan.a tests/unit/t.h
	@mkdir -p $(dir $@)
	$(CLANG) $(SANFLAGS) -o $@ $< $(B)/libsan.a $(LIBS)

FUZZFLAGS := $(CSTD) -O1 -g -fsanitize=fuzzer,address,undefined -Isrc
$(B)/fuzz/%: tests/fuzz/%.c $(B)/libfz.a
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZFLAGS) -o $@ $< $(B)/libfz.a $(LIBS)

unit: $(UNIT_BIN)
unit-san: $(UNIT_SAN)
fuzz-build: $(FUZZ_BIN)
FUZZ_SECONDS ?= 30
fuzz: deps fuzz-build
	tests/run-fuzz $(FUZZ_SECONDS) $(FUZZ_BIN)

layering:
	@tests/check-layering

test: deps
	@scripts/users
	$(MAKE) -j2 all test-build unit unit-san fuzz-build
	@tests/run-all

run: all
	@scripts/users
	bin/ternd

install: all
	scripts/install

bench: all
	bench/run

clean:
	rm -rf $(B) bin

-include $(shell find $(B) -name '*.d' 2>/dev/null)
